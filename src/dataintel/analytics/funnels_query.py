"""The one query a funnel runs: the events that match a step or an exclusion (all events of
the range for a strict funnel), each with a bit mask of what it matches, in (entity, time)
order, as Arrow. Written in DuckDB SQL; the ClickHouse adapter transpiles it.

Two shapes, one result (``FunnelEvents``):

- ``funnel_sql`` (DuckDB): one row per event, sorted by entity and time.
- ``grouped_sql`` (ClickHouse): one row per entity, sorted by entity, holding an array of its
  events sorted by time. ClickHouse sorts millions of rows by a String key slowly (sorted
  blocks merged row by row, for every column); grouping is a hash aggregation, as in its own
  ``windowFunnel``, and each entity's small array sorts in cache. Without a breakdown each
  event is one Int64, (µs since ``start``) << bits | mask; when that could overflow (a long
  range with many steps and exclusions) the row shape is used instead.

Values never enter the SQL text: event names, filter values and JSON paths are parameters.
Missing or empty text properties are NULL on both engines (ClickHouse's JSONExtractString
returns '' for a missing key).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from dataintel.analytics.funnels_spec import EventMatch, FunnelMode, FunnelSpec, PropertyFilter
from dataintel.storage.analytics.port import AnalyticsStore

I64 = npt.NDArray[np.int64]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class FunnelEvents:
    """Rows sorted by (entity, time); ``entity`` holds dense codes 0..n_entities-1."""

    entity: I64
    t: I64  # µs since the epoch
    mask: I64  # bit k: step k+1; bit n_steps+i: exclusion i+1
    breakdown: pa.Array | None  # per row, text or null
    n_entities: int


@dataclass(frozen=True, slots=True)
class Packing:
    """``grouped_sql``'s event: µs since ``origin`` (the range's start) and the mask bits."""

    bits: int
    origin: int  # µs since the epoch


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


def _matched(spec: FunnelSpec, project_id: str, dialect: str, params: list[object]) -> str:
    """The subquery ``matched``: (entity, ts, mask[, breakdown]) of the range's events, and
    the condition on it that keeps the events that match something."""
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
    return (
        "(SELECT "  # noqa: S608 - only fixed column names enter the text
        + ", ".join(columns)
        + " FROM events WHERE "
        + " AND ".join(where)
        + ") AS matched"
        + (" WHERE mask > 0" if spec.mode is not FunnelMode.STRICT else "")
    )


def funnel_sql(spec: FunnelSpec, project_id: str, dialect: str) -> tuple[str, list[object]]:
    """One row per event: (entity, ts, mask[, breakdown]) sorted by entity and time."""
    params: list[object] = []
    text = (
        "SELECT * FROM "  # noqa: S608 - only fixed column names enter the text
        + _matched(spec, project_id, dialect, params)
        + " ORDER BY entity, ts"
        # ties: the smallest breakdown value first, so first touch is deterministic
        + (", breakdown NULLS LAST" if spec.breakdown is not None else "")
    )
    return text, params


def packing(spec: FunnelSpec) -> Packing | None:
    """The packing of ``grouped_sql``; None when (µs of the range) << bits overflows Int64."""
    bits = len(spec.steps) + len(spec.exclusions)
    origin = _epoch_micros(spec.start)
    if (_epoch_micros(spec.end) - origin) << bits > _INT64_MAX:
        return None
    return Packing(bits, origin)


def grouped_sql(spec: FunnelSpec, project_id: str, packing: Packing) -> tuple[str, list[object]]:
    """ClickHouse SQL: one row per entity, sorted by entity; its events in one array sorted
    by time (ties: by mask; with a breakdown, by the breakdown NULLS LAST first).

    Without a breakdown an event is (µs since origin) << bits | mask; with one, the tuple
    (µs since origin, breakdown IS NULL, breakdown, mask)."""
    params: list[object] = [packing.origin]
    micros = "(toUnixTimestamp64Micro(ts) - ?)"
    if spec.breakdown is None:
        event = f"{micros} * {1 << packing.bits} + mask"
    else:
        event = f"({micros}, isNull(breakdown), breakdown, mask)"
    text = (
        f"SELECT arraySort(groupArray({event})) AS events FROM "  # noqa: S608 - fixed text
        + _matched(spec, project_id, "clickhouse", params)
        + " GROUP BY entity ORDER BY entity"
    )
    return text, params


def fetch(store: AnalyticsStore, spec: FunnelSpec, project_id: str) -> FunnelEvents:
    packed = packing(spec) if store.dialect == "clickhouse" else None
    if packed is not None:
        text, params = grouped_sql(spec, project_id, packed)
        return from_groups(store.sql(text, params), packed)
    text, params = funnel_sql(spec, project_id, store.dialect)
    return from_table(store.sql(text, params))


def from_table(table: pa.Table) -> FunnelEvents:
    """``funnel_sql``'s rows → FunnelEvents."""
    n = table.num_rows
    if n == 0:
        return _empty()
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


def from_groups(table: pa.Table, packing: Packing) -> FunnelEvents:
    """``grouped_sql``'s rows (one array of events per entity) → FunnelEvents."""
    chunks = [c for c in table.column("events").chunks if len(c)]
    if not chunks:
        return _empty()
    lengths = np.concatenate([pc.list_value_length(c).to_numpy() for c in chunks])
    events = [c.flatten() for c in chunks]
    breakdown = None
    if pa.types.is_struct(events[0].type):
        t = _int64s(e.field(0) for e in events) + packing.origin
        mask = _int64s(e.field(3) for e in events)
        breakdown = pa.concat_arrays([e.field(2).cast(pa.string()) for e in events])
    else:
        packed = _int64s(events)
        t = (packed >> packing.bits) + packing.origin
        mask = packed & ((1 << packing.bits) - 1)
    entity = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    return FunnelEvents(entity, t, mask, breakdown, int(lengths.size))


def _int64s(arrays: Iterable[pa.Array]) -> I64:
    return np.concatenate([a.cast(pa.int64()).to_numpy() for a in arrays])


def _empty() -> FunnelEvents:
    empty = np.zeros(0, np.int64)
    return FunnelEvents(empty, empty, empty, None, 0)


def _epoch_micros(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(microseconds=1)
