"""Micro-batch → partial tiles, vectorised inside an in-memory DuckDB (no per-event Python).

For each group of features reading the same (project, pipeline, event, entity key), ONE query
expands every event into its tiles (1 s … 1 d, and 1 µs while recent), groups by (entity,
log partition, level, tile) and computes every feature's partial state at once. Field values
are read with the same DuckDB JSON functions the offline SQL uses, so both paths see the
same values. The result stays columnar: one ``PartialGroup`` (an Arrow table, one row per
tile, the features as columns) per group, merged set-wise by the online store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import duckdb
import pyarrow as pa

from dataintel.features.online.plans import (
    ANY,
    FeaturePlan,
    instant_text,
    is_envelope,
    is_envelope_key,
)
from dataintel.model.aggregations import Aggregation
from dataintel.model.fields import ENTITY_ID_MAX
from dataintel.model.tiles import HEAD_US, SIZES, TOP
from dataintel.storage.online.port import PartialGroup, StateField


def levels_sql(plans: Sequence[FeaturePlan]) -> str:
    """The levels as (level, size µs, keep µs) rows; keep: the longest any plan of the group
    keeps that level (``tiles.keeps``)."""
    return ", ".join(
        f"({i}, {size}, {max(p.keep[i] for p in plans)})" for i, size in enumerate(SIZES)
    )


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_path(name: str) -> str:
    return _lit("$." + name)


ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # DuckDB strftime: what ``plans.instant_text`` writes


def entity_sql(entity_key: str) -> str:
    """The entity id of an event (NULL: the event is ignored by the feature). A property
    used as entity key follows the envelope ids' rule: longer than 256 characters → NULL."""
    if is_envelope_key(entity_key):
        return entity_key
    value = f"nullif(json_extract_string(properties, {_json_path(entity_key)}), '')"
    return f"CASE WHEN length({value}) <= {ENTITY_ID_MAX} THEN {value} END"


def text_sql(field: str) -> str:
    """The field as text (NULL when missing, JSON null or empty): the COUNT_DISTINCT key.

    ``nullif(…, '')`` makes both engines agree: ClickHouse's JSONExtractString answers ''
    for a missing key where DuckDB answers NULL. The envelope ``timestamp`` reads as
    ISO-8601 UTC text with microseconds."""
    if field == "timestamp":
        return f"strftime(ts, '{ISO_FORMAT}')"
    if is_envelope(field):
        return f"nullif({field}, '')"
    return f"nullif(json_extract_string(properties, {_json_path(field)}), '')"


def instant_sql(field: str) -> str:
    """A timestamp field as UTC µs, read as ingest validated it: an ISO-8601 string (naive:
    UTC) or an epoch number (seconds, or milliseconds above 1e11); NULL otherwise."""
    if field == "timestamp":
        return "epoch_us(ts)"
    path = _json_path(field)
    text = f"json_extract_string(properties, {path})"
    return instant_case(
        f"json_type(properties, {path})",
        ("VARCHAR", f"epoch_us(TRY_CAST({text} AS TIMESTAMPTZ))"),
        ("'UBIGINT', 'BIGINT', 'DOUBLE'", f"TRY_CAST({text} AS DOUBLE)"),
        lambda us: f"CAST({us} AS BIGINT)",
    )


def instant_case(
    kind: str, string: tuple[str, str], number: tuple[str, str], bigint: Callable[[str], str]
) -> str:
    """``instant_sql``'s rule in an engine's spelling: when the JSON type ``kind`` is
    ``string[0]``, the instant ``string[1]`` parses (µs); when it is one of ``number[0]``,
    the epoch number ``number[1]`` (seconds, or milliseconds above 1e11) as µs, rounded and
    cast by ``bigint``; else NULL."""
    (string_type, parsed), (number_types, value) = string, number
    us = f"CASE WHEN {value} > 1e11 THEN {value} * 1000 ELSE {value} * 1000000 END"
    return (
        f"CASE WHEN {kind} = '{string_type}' THEN {parsed} "
        f"WHEN {kind} IN ({number_types}) THEN {bigint(f'round({us})')} END"
    )


def number_sql(field: str) -> str:
    return f"TRY_CAST({text_sql(field)} AS DOUBLE)"


def json_sql(field: str) -> str:
    """The field as JSON text (for FIRST / LAST, which keep the value's JSON type)."""
    if is_envelope(field):
        return f"CAST(to_json({text_sql(field)}) AS VARCHAR)"
    return f"CAST(json_extract(properties, {_json_path(field)}) AS VARCHAR)"


class Values:
    """The field expressions a group's aggregates read, each computed once per event (in the
    ``src`` step, before events are expanded into their levels) and read by alias."""

    def __init__(self) -> None:
        self.exprs: dict[str, str] = {}

    def __call__(self, expr: str) -> str:
        alias = self.exprs.get(expr)
        if alias is None:
            alias = self.exprs[expr] = f"v{len(self.exprs)}"
        return alias

    def select(self) -> str:
        return "".join(f", {expr} AS {alias}" for expr, alias in self.exprs.items())


def _aggregates(i: int, plan: FeaturePlan, val: Values) -> list[str]:
    agg, field = plan.aggregation, plan.field
    if agg is Aggregation.COUNT:
        return [f"count(*) AS a{i}"]
    assert field is not None
    if agg is Aggregation.SUM:
        return [f"sum({val(number_sql(field))}) AS a{i}"]
    if agg is Aggregation.AVG:
        v = val(number_sql(field))
        return [f"sum({v}) AS a{i}", f"nullif(count({v}), 0) AS b{i}"]
    if agg in (Aggregation.MIN, Aggregation.MAX):
        value = val(instant_sql(field) if plan.timestamp else number_sql(field))
        return [f"{agg.value.lower()}({value}) AS a{i}"]
    if agg is Aggregation.COUNT_DISTINCT:
        v = val(text_sql(field))
        return [f"list(DISTINCT {v}) FILTER (WHERE {v} IS NOT NULL) AS a{i}"]
    fn = "min" if agg is Aggregation.FIRST else "max"
    return [
        f"{fn}({{'t': t, 'event_id': event_id, 'v': {val(json_sql(field))}}}) "
        f"FILTER (WHERE {val(text_sql(field))} IS NOT NULL) AS x{i}"
    ]


def _outputs(i: int, plan: FeaturePlan) -> list[str]:
    """The output columns of plan ``i`` (the port's partial layout)."""
    agg = plan.aggregation
    if agg in (Aggregation.FIRST, Aggregation.LAST):
        return [f"x{i}.t AS a{i}", f"x{i}.event_id AS b{i}", f"x{i}.v AS c{i}"]
    if agg is Aggregation.AVG:
        return [f"a{i}", f"b{i}"]
    return [f"a{i}"]


def group_query(plans: Sequence[FeaturePlan]) -> str:
    first = plans[0]
    entity = entity_sql(first.entity_key)
    val = Values()
    aggregates = ",\n  ".join(a for i, p in enumerate(plans) for a in _aggregates(i, p, val))
    outputs = ", ".join(a for i, p in enumerate(plans) for a in _outputs(i, p))
    source = "" if first.source_event == ANY else "AND pipeline_id = $pipeline AND event = $event"
    # Names come from validated config (FIELD_NAME patterns) and are quoted by _lit.
    return f"""
WITH src AS (
  SELECT {entity} AS entity, log_partition, log_offset, epoch_us(ts) AS t,
         event_id{val.select()}
  FROM batch
  WHERE project_id = $project {source}
    AND {entity} IS NOT NULL
), x AS (
  SELECT src.*, l.level, t - ((t % l.size) + l.size) % l.size AS tile
  FROM src, (VALUES {levels_sql(plans)}) l(level, size, keep)
  -- 1 µs tiles while recent; 1 s, 1 min, 1 h tiles while some window can read them (what
  -- ``tiles.trim`` would drop at once is not made); every day tile (they carry ``last_t``)
  WHERE (l.level = 0 AND t > $head) OR l.level = {TOP}
    OR (l.level BETWEEN 1 AND {TOP - 1}
        AND t - ((t % l.size) + l.size) % l.size + l.size > $now - l.keep)
), g AS (
  SELECT entity, log_partition, level, tile, min(log_offset) AS lo, max(log_offset) AS hi,
    max(t) AS last_t,
    {aggregates}
  FROM x
  GROUP BY ALL
)
SELECT entity, log_partition, level, tile, lo, hi, last_t, {outputs}
FROM g
ORDER BY entity, log_partition, level, tile
"""  # noqa: S608


def state_field(plan: FeaturePlan) -> StateField:
    return StateField(plan.state_field, plan.aggregation, plan.keep, plan.lifetime)


class PartialBuilder:
    """Turns a decoded micro-batch into PartialGroups; one DuckDB connection, one lock."""

    def __init__(self) -> None:
        self._db = duckdb.connect(":memory:", config={"enable_external_access": False})
        self._db.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self._queries: dict[tuple[tuple[str, int], ...], str] = {}

    def build(
        self,
        batch: pa.Table,
        groups: Sequence[Sequence[FeaturePlan]],
        now_us: int,
    ) -> list[PartialGroup]:
        out: list[PartialGroup] = []
        with self._lock:
            self._db.register("batch", batch)
            try:
                for plans in groups:
                    found = self._group(plans, now_us)
                    if found is not None:
                        out.append(found)
            finally:
                self._db.unregister("batch")
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _group(self, plans: Sequence[FeaturePlan], now_us: int) -> PartialGroup | None:
        cache_key = tuple((p.name, p.version) for p in plans)
        query = self._queries.get(cache_key)
        if query is None:
            query = self._queries[cache_key] = group_query(plans)
        first = plans[0]
        params: dict[str, object] = {
            "project": first.project_id,
            "head": now_us - HEAD_US,
            "now": now_us,
        }
        if first.source_event != ANY:
            params["pipeline"], params["event"] = first.pipeline_id, first.source_event
        table = self._db.sql(query, params=params).to_arrow_table()
        if table.num_rows == 0:
            return None
        for i, plan in enumerate(plans):
            if plan.timestamp:  # MIN / MAX of instants: fixed-width ISO text orders as time
                name = f"a{i}"
                texts = [None if v is None else instant_text(v) for v in table[name].to_pylist()]
                table = table.set_column(
                    table.schema.get_field_index(name), name, pa.array(texts, pa.string())
                )
        return PartialGroup(
            first.project_id,
            first.entity_key,
            tuple(state_field(p) for p in plans),
            table,
            now_us,
        )
