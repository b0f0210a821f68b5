"""The offline path: feature values as of t, computed by SQL inside the analytics store.

The same window formula as the tiles (DESIGN.md §3): evaluated at t, a window W with
granularity g aggregates the events with ``ts ∈ [floor((t - W)/g)·g, t]`` (µs, both ends
inclusive); ``lifetime`` every event with ``ts ≤ t``. The starts are computed here in exact
integer arithmetic and bound as TIMESTAMP parameters; the SQL (``offline_query``) is one
query per call, whatever the number of features and windows, run through
``AnalyticsStore.sql`` (DuckDB as written, ClickHouse transpiled).

``compute_offline_with_times`` also returns, for each FIRST / LAST value, the event time
(µs) of the chosen event (None when the value is null): derived features need "seconds
since a LAST".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ParamSpec

import orjson

from dataintel.features.offline.query import OfflinePlan, entities_query
from dataintel.features.offline.sql import select_features
from dataintel.features.online.plans import field_type, instant_text
from dataintel.model.aggregations import Aggregation
from dataintel.model.snapshot import ConfigSnapshot, FeatureSpec
from dataintel.model.tiles import WindowSpec
from dataintel.storage.analytics.port import AnalyticsStore

Values = dict[str, dict[str, Any]]
Times = dict[str, dict[str, int | None]]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
P = ParamSpec("P")


def window_start(w: WindowSpec, t_us: int) -> int | None:
    """floor((t - W)/g)·g in µs; None for lifetime."""
    if w.span_us is None or w.granularity_us is None:
        return None
    g = w.granularity_us
    return ((t_us - w.span_us) // g) * g


def to_micros(value: Any) -> int:
    """A TIMESTAMP from the engine (naive UTC or aware datetime, or µs) → µs."""
    if isinstance(value, int):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - EPOCH
    return int((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def empty_value(agg: Aggregation) -> Any:
    """The value of an empty window: 0 for COUNT / COUNT_DISTINCT, 0.0 for SUM, else null."""
    if agg in (Aggregation.COUNT, Aggregation.COUNT_DISTINCT):
        return 0
    return 0.0 if agg is Aggregation.SUM else None


def decode_value(
    agg: Aggregation, row: Mapping[str, Any], name: str, text: bool, instant: bool = False
) -> tuple[Any, int | None]:
    """(value, FIRST/LAST event time µs) of value ``name`` from one result row."""
    n = int(row[f"n{name}"] or 0)
    if agg in (Aggregation.COUNT, Aggregation.COUNT_DISTINCT):
        return n, None
    if n == 0:
        return empty_value(agg), None
    value = row[f"v{name}"]
    if agg is Aggregation.SUM:
        return float(value), None
    if agg is Aggregation.AVG:
        return float(value) / n, None
    if agg in (Aggregation.MIN, Aggregation.MAX):
        return (instant_text(round(value)) if instant else float(value)), None
    return (value if text else orjson.loads(value)), to_micros(row[f"t{name}"])


def compute_offline_with_times(
    analytics: AnalyticsStore,
    project_id: str,
    features: Sequence[FeatureSpec],
    entity_key: str,
    entity_ids: Sequence[str],
    t_us: int,
    snapshot: ConfigSnapshot | None = None,
) -> tuple[Values, Times]:
    """Values (and FIRST/LAST event times) per entity id of ``features`` (those whose
    entity key is ``entity_key``) as of ``t_us``, in one query. ``snapshot``: the deployed
    config, for the declared field types (string fields, timestamps)."""
    ids = list(dict.fromkeys(entity_ids))
    selected, sources = select_features(
        features, entity_key, lambda spec: field_type(snapshot, spec)
    )
    values: Values = {i: {} for i in ids}
    times: Times = {i: {} for i in ids}
    for sel in selected:
        for w in sel.windows:
            for i in ids:
                values[i][w.value_name] = empty_value(sel.aggregation)
                times[i][w.value_name] = None
    if not ids or not selected:
        return values, times
    plan = OfflinePlan(selected, sources, analytics.dialect)
    sql, params = entities_query(plan, project_id, ids, t_us)
    for row in analytics.sql(sql, params).to_pylist():
        entity = str(row["e_entity"])
        if entity not in values:
            continue
        for k, sel in enumerate(selected):
            for j, w in enumerate(sel.windows):
                value, when = decode_value(
                    sel.aggregation, row, f"{k}_{j}", sel.text_value, sel.timestamp
                )
                values[entity][w.value_name], times[entity][w.value_name] = value, when
    return values, times


def _values_only(compute: Callable[P, tuple[Values, Times]]) -> Callable[P, Values]:
    def values(*args: P.args, **kwargs: P.kwargs) -> Values:
        return compute(*args, **kwargs)[0]

    return values


compute_offline = _values_only(compute_offline_with_times)
"""Every value ``<feature>_<window>`` per entity id as of ``t_us``: the values of
``compute_offline_with_times`` (same arguments), without the times."""
