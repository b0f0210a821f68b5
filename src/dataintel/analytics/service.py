"""Analytics answers over the AnalyticsStore (``sql`` only, the project always bound)."""

from __future__ import annotations

from collections import defaultdict

from dataintel.analytics.overview import COUNTS, SUMS, overview_query
from dataintel.analytics.params import AnalyticsParams, Bucket
from dataintel.analytics.schemas import (
    MetricValue,
    Number,
    OverviewMetrics,
    OverviewPoint,
    OverviewRead,
    PeriodRead,
)
from dataintel.analytics.settings import DeployedSettings
from dataintel.storage.analytics.port import AnalyticsStore

CURRENT, PREVIOUS = 1, 0
TOTAL = -1  # the bucket of a whole-period row
Values = dict[str, Number | None]


def _change(value: Number | None, previous: Number | None) -> float | None:
    if value is None or previous is None or previous == 0:
        return None
    return (value - previous) / previous


def _metrics(current: Values, previous: Values) -> OverviewMetrics:
    return OverviewMetrics(
        **{
            name: MetricValue(
                value=current[name],
                previous=previous[name],
                change=_change(current[name], previous[name]),
            )
            for name in OverviewMetrics.model_fields
        }
    )


def _values(found: dict[str, float], users: float | None = None) -> Values:
    """One point's (or period's) numbers from the query's rows (absent rows: zero)."""
    out: Values = {name: int(found.get(name, 0)) for name in COUNTS}
    out.update({name: float(found.get(name, 0.0)) for name in SUMS})
    if users is not None:
        out["active_users"] = int(users)
    abandoned = int(found.get("carts_abandoned", 0))
    recovered = int(found.get("carts_recovered", 0))
    out["recovery_rate"] = recovered / abandoned if abandoned else None
    return out


class AnalyticsService:
    def __init__(self, store: AnalyticsStore) -> None:
        self.store = store

    def overview(
        self, project_id: str, params: AnalyticsParams, deployed: DeployedSettings
    ) -> OverviewRead:
        text, values = overview_query(project_id, params, deployed.settings)
        rows: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
        for row in self.store.sql(text, values).to_pylist():
            value = row["value"] if row["value"] is not None else 0.0
            rows[(row["period"], row["bucket"])][row["metric"]] = value
        previous = params.previous()
        current_points, previous_points = params.buckets(), previous.buckets()
        totals = {
            period: _total(rows, period, len(points))
            for period, points in ((CURRENT, current_points), (PREVIOUS, previous_points))
        }
        series = [
            _point(rows, i, bucket, previous_points[i] if i < len(previous_points) else None)
            for i, bucket in enumerate(current_points)
        ]
        return OverviewRead(
            project_id=project_id,
            period=PeriodRead(start=params.start, end=params.end),
            previous_period=PeriodRead(start=previous.start, end=previous.end),
            as_of=params.as_of,
            interval=params.interval.value,
            filters=[f.text for f in params.filters],
            settings=deployed.settings,
            config_version=deployed.version,
            totals=_metrics(totals[CURRENT], totals[PREVIOUS]),
            series=series,
        )


def _total(rows: dict[tuple[int, int], dict[str, float]], period: int, points: int) -> Values:
    summed: dict[str, float] = defaultdict(float)
    for bucket in range(points):
        for name, value in rows.get((period, bucket), {}).items():
            summed[name] += value
    return _values(summed, rows.get((period, TOTAL), {}).get("active_users_total", 0.0))


def _point(
    rows: dict[tuple[int, int], dict[str, float]],
    index: int,
    bucket: Bucket,
    previous: Bucket | None,
) -> OverviewPoint:
    current = _values(rows.get((CURRENT, index), {}))
    before = _values(rows.get((PREVIOUS, index), {})) if previous is not None else None
    empty: Values = dict.fromkeys(current)
    return OverviewPoint(
        start=bucket.start,
        end=bucket.end,
        previous_start=previous.start if previous else None,
        previous_end=previous.end if previous else None,
        metrics=_metrics(current, before if before is not None else empty),
    )
