"""The hourly metrics the anomaly detector watches, computed by SQL in the analytics store
(DuckDB SQL; ``AnalyticsStore.sql`` transpiles it for ClickHouse), per bucket of event time
(UTC, ``bucket_hours`` long, aligned to the epoch):

- ``volume:<event>``: events of each type (an hour without any counts 0);
- ``revenue``: the sum of the purchase event's revenue property (analytics settings);
- ``conversion_rate``: users who purchased / users with any event (support: the users);
- ``null_rate:<event>.<field>``: the share of the event's events without a value for a
  field its deployed schema declares (support: the events);
- ``mean:<event>.<field>``: the mean of a declared number field (support: its values);
- ``abandonment_rate``: of the carts whose outcome falls in the bucket, the share
  abandoned (``abandonment`` below; support: those carts);
- ``rejection_rate``: events rejected at ingest / events received (accepted, duplicate or
  rejected), per bucket of arrival, from the ingest stats in the metadata store (support:
  the events received).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from dataintel.model.anomaly import Point
from dataintel.model.fields import FieldType
from dataintel.model.monitoring import MetricKind
from dataintel.model.snapshot import ConfigSnapshot
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.sql_terms import Params, micros, number_field, text_field

HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNITS: dict[MetricKind, float] = {
    "volume": 1.0,
    "revenue": 1.0,
    "conversion_rate": 0.01,
    "null_rate": 0.01,
    "mean": 1e-9,
    "rejection_rate": 0.01,
    "abandonment_rate": 0.01,
}
FAR_FUTURE = datetime(2299, 1, 1, tzinfo=UTC)  # "no next event" (as analytics/overview.py)


@dataclass(slots=True)
class Series:
    metric: str
    kind: MetricKind
    points: dict[datetime, Point] = field(default_factory=dict)

    @property
    def unit(self) -> float:
        return UNITS[self.kind]


def _at(index: int, step: timedelta) -> datetime:
    return EPOCH + index * step


def _rows(store: AnalyticsStore, query: str, p: Params) -> list[dict[str, object]]:
    table: pa.Table = store.sql(query, p.values)
    rows: list[dict[str, object]] = table.to_pylist()
    return rows


def _where(p: Params, project_id: str, start: datetime, end: datetime) -> str:
    return f"project_id = {p(project_id)} AND ts >= {p(start)} AND ts < {p(end)}"


def _bucket(step: timedelta) -> str:
    return f"CAST({micros('ts')} // {step // timedelta(microseconds=1)} AS BIGINT)"


def volume(
    store: AnalyticsStore, project_id: str, start: datetime, end: datetime, step: timedelta
) -> list[Series]:
    p = Params()
    query = (
        f"SELECT event, {_bucket(step)} AS h, count(*) AS n FROM events "  # noqa: S608
        f"WHERE {_where(p, project_id, start, end)} GROUP BY event, h"
    )
    found: dict[str, Series] = {}
    for row in _rows(store, query, p):
        name = str(row["event"])
        series = found.setdefault(name, Series(f"volume:{name}", "volume"))
        n = float(row["n"])  # type: ignore[arg-type]
        series.points[_at(int(row["h"]), step)] = Point(n, n)  # type: ignore[call-overload]
    for series in found.values():  # a bucket without the event counts 0 (from its first)
        hour = min(series.points)
        while hour < end:
            series.points.setdefault(hour, Point(0.0, 0.0))
            hour += step
    return list(found.values())


def commerce(
    store: AnalyticsStore,
    project_id: str,
    snapshot: ConfigSnapshot,
    window: tuple[datetime, datetime],
    step: timedelta,
) -> list[Series]:
    """Revenue and the conversion rate per hour (the analytics settings' purchase event)."""
    settings = snapshot.analytics
    start, end = window
    p = Params()
    purchase = p(settings.purchase_event)
    query = (
        f"SELECT {_bucket(step)} AS h, "  # noqa: S608
        f"sum(CASE WHEN event = {purchase} THEN {number_field(settings.revenue_field)} END) "
        f"AS revenue, count(CASE WHEN event = {purchase} THEN 1 END) AS purchases, "
        f"count(DISTINCT CASE WHEN event = {purchase} THEN user_id END) AS buyers, "
        f"count(DISTINCT user_id) AS users "
        f"FROM events WHERE {_where(p, project_id, start, end)} GROUP BY h"
    )
    revenue, conversion = Series("revenue", "revenue"), Series("conversion_rate", "conversion_rate")
    rows = _rows(store, query, p)
    if rows:  # a bucket without purchases has revenue 0 (from the first with events)
        hour = _at(min(int(r["h"]) for r in rows), step)  # type: ignore[call-overload]
        while hour < end:
            revenue.points[hour] = Point(0.0, 0.0)
            hour += step
    for row in rows:
        moment = _at(int(row["h"]), step)  # type: ignore[call-overload]
        purchases = float(row["purchases"])  # type: ignore[arg-type]
        revenue.points[moment] = Point(float(row["revenue"] or 0.0), purchases)  # type: ignore[arg-type]
        users = float(row["users"])  # type: ignore[arg-type]
        if users > 0:
            buyers = float(row["buyers"])  # type: ignore[arg-type]
            conversion.points[moment] = Point(buyers / users, users)
    return [revenue, conversion]


def fields(
    store: AnalyticsStore,
    project_id: str,
    snapshot: ConfigSnapshot,
    window: tuple[datetime, datetime],
    kinds: frozenset[MetricKind],
    step: timedelta,
) -> list[Series]:
    """Null rates of every declared field, and means of the number fields, per event."""
    start, end = window
    declared: dict[str, dict[str, FieldType]] = {}
    for pipeline in snapshot.pipelines:
        for event in pipeline.events:
            if event.enabled:
                declared.setdefault(event.name, {}).update({f.name: f.type for f in event.fields})
    found: list[Series] = []
    for name, types in sorted(declared.items()):
        if types:
            found += _event_fields(store, project_id, name, types, (start, end), kinds, step)
    return found


def _event_fields(
    store: AnalyticsStore,
    project_id: str,
    event: str,
    types: dict[str, FieldType],
    window: tuple[datetime, datetime],
    kinds: frozenset[MetricKind],
    step: timedelta,
) -> list[Series]:
    p = Params()
    names = sorted(types)
    numbers = [n for n in names if types[n] is FieldType.NUMBER]
    columns = [f"count({text_field(n)}) AS c{i}" for i, n in enumerate(names)]
    columns += [f"avg({number_field(n)}) AS m{i}" for i, n in enumerate(numbers)]
    columns += [f"count({number_field(n)}) AS k{i}" for i, n in enumerate(numbers)]
    query = (
        f"SELECT {_bucket(step)} AS h, count(*) AS n, {', '.join(columns)} FROM events "  # noqa: S608
        f"WHERE {_where(p, project_id, *window)} AND event = {p(event)} GROUP BY h"
    )
    nulls = {n: Series(f"null_rate:{event}.{n}", "null_rate") for n in names}
    means = {n: Series(f"mean:{event}.{n}", "mean") for n in numbers}
    for row in _rows(store, query, p):
        moment, total = _at(int(row["h"]), step), float(row["n"])  # type: ignore[call-overload,arg-type]
        for i, n in enumerate(names):
            present = float(row[f"c{i}"])  # type: ignore[arg-type]
            nulls[n].points[moment] = Point(1.0 - present / total, total)
        for i, n in enumerate(numbers):
            mean, count = row[f"m{i}"], float(row[f"k{i}"])  # type: ignore[arg-type]
            if mean is not None:
                means[n].points[moment] = Point(float(mean), count)  # type: ignore[arg-type]
    chosen: list[Series] = []
    if "null_rate" in kinds:
        chosen += nulls.values()
    if "mean" in kinds:
        chosen += means.values()
    return chosen


def rejections(
    counts: list[tuple[datetime, int, int]], window: tuple[datetime, datetime], step: timedelta
) -> list[Series]:
    """``rejection_rate`` from the ingest stats: (hour of arrival, received, rejected)."""
    start, end = window
    totals: dict[datetime, list[int]] = {}
    for hour, received, rejected in counts:
        bucket = _at((hour - EPOCH) // step, step)
        if start <= bucket < end:
            found = totals.setdefault(bucket, [0, 0])
            found[0] += received
            found[1] += rejected
    series = Series("rejection_rate", "rejection_rate")
    for bucket, (received, rejected) in totals.items():
        if received > 0:
            series.points[bucket] = Point(rejected / received, float(received))
    return [series] if series.points else []


def abandonment(
    store: AnalyticsStore,
    project_id: str,
    snapshot: ConfigSnapshot,
    window: tuple[datetime, datetime],
    step: timedelta,
) -> list[Series]:
    """``abandonment_rate`` per bucket: of the carts whose outcome falls in the bucket, the
    share abandoned. A cart is abandoned (the analytics plane's definition, overview.py) at
    its first cart event followed by ``abandon_after`` without a cart event or a purchase;
    its outcome is that moment, or its first purchase before it. Only events before the
    window's end count, so a bucket's rate is final once the bucket has ended."""
    settings = snapshot.analytics
    start, end = window
    p = Params()
    purchase, idle = p(settings.purchase_event), p(settings.seconds("abandon_after"))
    query = f"""
WITH cart_seq AS (
    SELECT cart_id, ts, event = {purchase} AS is_purchase,
        lead(ts, 1, {p(FAR_FUTURE)}) OVER (
            PARTITION BY cart_id ORDER BY ts, event = {purchase}, event_id) AS next_ts
    FROM events
    WHERE project_id = {p(project_id)} AND ts >= {p(start)} AND ts < {p(end)}
        AND cart_id IS NOT NULL
        AND (list_contains({p(list(settings.cart_events))}, event) OR event = {purchase})
),
carts AS (
    SELECT cart_id,
        min(CASE WHEN next_ts > ts + INTERVAL ({idle}) SECOND THEN ts END) AS idle_from
    FROM cart_seq WHERE NOT is_purchase GROUP BY cart_id
),
outcomes AS (
    SELECT idle_from + INTERVAL ({idle}) SECOND AS at, 1 AS abandoned FROM carts
    WHERE idle_from IS NOT NULL AND idle_from + INTERVAL ({idle}) SECOND < {p(end)}
    UNION ALL
    SELECT min(s.ts) AS at, 0 AS abandoned FROM cart_seq s JOIN carts c ON c.cart_id = s.cart_id
    WHERE s.is_purchase AND (c.idle_from IS NULL OR s.ts <= c.idle_from + INTERVAL ({idle}) SECOND)
    GROUP BY s.cart_id
)
SELECT CAST({micros("at")} // {step // timedelta(microseconds=1)} AS BIGINT) AS h,
    count(*) AS n, sum(abandoned) AS a
FROM outcomes GROUP BY h
"""  # noqa: S608 - placeholders and fixed SQL only
    series = Series("abandonment_rate", "abandonment_rate")
    for row in _rows(store, query, p):
        n = float(row["n"])  # type: ignore[arg-type]
        if n > 0:
            series.points[_at(int(row["h"]), step)] = Point(float(row["a"]) / n, n)  # type: ignore[arg-type,call-overload]
    return [series] if series.points else []
