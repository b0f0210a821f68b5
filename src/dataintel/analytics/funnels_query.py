"""The one query a funnel runs: the events that match a step or an exclusion (all events of
the range for a strict funnel), each with a bit mask of what it matches, sorted by entity and
time, as Arrow. Written once in DuckDB SQL; the ClickHouse adapter transpiles it.

Values never enter the SQL text: event names, filter values and JSON paths are parameters.
Missing or empty text properties are NULL on both engines (ClickHouse's JSONExtractString
returns '' for a missing key).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from dataintel.analytics.funnels_spec import EventMatch, FunnelMode, FunnelSpec, PropertyFilter
from dataintel.storage.analytics.port import AnalyticsStore

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class FunnelEvents:
    """Rows sorted by (entity, time); ``entity`` holds dense codes 0..n_entities-1."""

    entity: I64
    t: I64  # µs since the epoch
    mask: I64  # bit k: step k+1; bit n_steps+i: exclusion i+1
    breakdown: pa.Array | None  # per row, text or null
    n_entities: int


def _json_path(dialect: str, prop: str) -> str:
    return prop if dialect == "clickhouse" else '$."' + prop + '"'


def _prop(dialect: str, prop: str, params: list[object]) -> str:
    params.append(_json_path(dialect, prop))
    return "NULLIF(json_extract_string(properties, ?), '')"


def _condition(dialect: str, match: EventMatch, params: list[object]) -> str:
    params.append(match.event)
    terms = ["event = ?"]
    for f in match.filters:
        terms.append(_filter(dialect, f, params))
    return "(" + " AND ".join(terms) + ")"


def _filter(dialect: str, f: PropertyFilter, params: list[object]) -> str:
    value = _prop(dialect, f.prop, params)
    op = "<>" if f.op == "!=" else f.op
    if isinstance(f.value, float):
        params.append(f.value)
        return f"coalesce(TRY_CAST({value} AS DOUBLE) {op} ?, false)"
    params.append(f.value)
    return f"coalesce({value} {op} ?, false)"


def funnel_sql(spec: FunnelSpec, project_id: str, dialect: str) -> tuple[str, list[object]]:
    params: list[object] = []
    matches = [*spec.steps, *(ex.match for ex in spec.exclusions)]
    bits = [
        f"(CASE WHEN {_condition(dialect, m, params)} THEN {1 << i} ELSE 0 END)"
        for i, m in enumerate(matches)
    ]
    columns = [f"{spec.entity.value} AS entity", "ts", " + ".join(bits) + " AS mask"]
    if spec.breakdown is not None:
        columns.append(_prop(dialect, spec.breakdown, params) + " AS breakdown")
    where = ["project_id = ?", "ts >= ?", "ts < ?", f"{spec.entity.value} IS NOT NULL"]
    params += [project_id, spec.start, spec.end]
    if spec.mode is not FunnelMode.STRICT:  # strict needs every event: others break chains
        names = sorted({m.event for m in matches})
        where.append("event IN (" + ", ".join("?" for _ in names) + ")")
        params += names
    text = (
        "SELECT * FROM (SELECT "  # noqa: S608 - only fixed column names enter the text
        + ", ".join(columns)
        + " FROM events WHERE "
        + " AND ".join(where)
        + ") AS matched"
        + (" WHERE mask > 0" if spec.mode is not FunnelMode.STRICT else "")
        + " ORDER BY entity, ts"
        # ties: the smallest breakdown value first, so first touch is deterministic
        + (", breakdown NULLS LAST" if spec.breakdown is not None else "")
    )
    return text, params


def fetch(store: AnalyticsStore, spec: FunnelSpec, project_id: str) -> FunnelEvents:
    text, params = funnel_sql(spec, project_id, store.dialect)
    table = store.sql(text, params)
    return from_table(table)


def from_table(table: pa.Table) -> FunnelEvents:
    n = table.num_rows
    if n == 0:
        empty = np.zeros(0, np.int64)
        return FunnelEvents(empty, empty, empty, None, 0)
    entity = table.column("entity").combine_chunks()
    change = np.empty(n, np.bool_)
    change[0] = True
    if n > 1:
        differs = pc.not_equal(entity.slice(1), entity.slice(0, n - 1))
        change[1:] = differs.to_numpy(zero_copy_only=False)
    codes = np.cumsum(change, dtype=np.int64) - 1
    t = table.column("ts").combine_chunks().cast(pa.int64()).to_numpy()
    mask = table.column("mask").combine_chunks().cast(pa.int64()).to_numpy()
    breakdown = (
        table.column("breakdown").combine_chunks() if "breakdown" in table.column_names else None
    )
    return FunnelEvents(codes, np.ascontiguousarray(t), mask, breakdown, int(codes[-1]) + 1)
