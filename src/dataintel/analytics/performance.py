"""Model performance per ``model_version``: the service behind
``GET /v1/analytics/performance``. The outcome join runs in SQL (``performance_sql``); the
metrics over the (probability, label) pairs in numpy (``performance_metrics``).

Predictions whose horizon has not ended by now are *pending* and left out: counting them as
negatives would bias every metric of the last days. Predictions without a probability in
[0, 1] are *invalid* and left out. Both are counted per version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from dataintel.analytics import performance_metrics as metrics
from dataintel.analytics.attribution_params import TimeRange
from dataintel.analytics.performance_schemas import (
    BinStrategy,
    CalibrationBin,
    Interval,
    ModelPerformance,
    PerformanceRead,
    PointRead,
    RocPointRead,
    TopRead,
)
from dataintel.analytics.performance_sql import PairScope, pairs_query
from dataintel.model.snapshot import AnalyticsSettings
from dataintel.storage.analytics.port import AnalyticsStore

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
MONDAY_US = 4 * DAY_US  # 1970-01-05, the first Monday after the epoch
MAX_POINTS = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PerformanceParams:
    range: TimeRange
    horizon: str
    horizon_us: int
    interval: Interval
    bins: int
    strategy: BinStrategy
    top: tuple[float, ...]
    model_versions: tuple[str, ...]
    now_us: int


def buckets(times_us: npt.NDArray[np.int64], interval: Interval) -> npt.NDArray[np.int64]:
    """The start (µs) of each time's interval: hours and days from the epoch, weeks from
    Monday, calendar months."""
    if interval is Interval.HOUR:
        return (times_us // HOUR_US) * HOUR_US
    if interval is Interval.DAY:
        return (times_us // DAY_US) * DAY_US
    if interval is Interval.WEEK:
        return ((times_us - MONDAY_US) // WEEK_US) * WEEK_US + MONDAY_US
    months = times_us.astype("datetime64[us]").astype("datetime64[M]")
    return months.astype("datetime64[us]").astype(np.int64)


def interval_count(span: TimeRange, interval: Interval) -> int:
    """How many intervals [from, to) touches (an upper bound for months)."""
    width = {Interval.HOUR: HOUR_US, Interval.DAY: DAY_US, Interval.WEEK: WEEK_US}
    size = width.get(interval, 28 * DAY_US)
    return (span.end_us - span.start_us) // size + 2


def scores(y: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> dict[str, Any]:
    positives = int(y.sum())
    return {
        "predictions": len(y),
        "positives": positives,
        "base_rate": positives / len(y) if len(y) else None,
        "roc_auc": metrics.roc_auc(y, p),
        "pr_auc": metrics.average_precision(y, p),
        "brier": metrics.brier(y, p),
        "log_loss": metrics.log_loss(y, p),
    }


class PerformanceService:
    def __init__(self, analytics: AnalyticsStore) -> None:
        self.analytics = analytics

    def performance(
        self, project_id: str, settings: AnalyticsSettings, params: PerformanceParams
    ) -> PerformanceRead:
        scope = PairScope(
            project_id=project_id,
            start_us=params.range.start_us,
            end_us=params.range.end_us,
            horizon_us=params.horizon_us,
            purchase_event=settings.purchase_event,
            model_versions=params.model_versions,
        )
        table = self.analytics.sql(*pairs_query(scope))
        return PerformanceRead(
            project_id=project_id,
            from_=params.range.start,
            to=params.range.end,
            horizon=params.horizon,
            interval=params.interval,
            bins=params.bins,
            strategy=params.strategy,
            purchase_event=settings.purchase_event,
            models=self._models(table, params),
        )

    def _models(self, table: pa.Table, params: PerformanceParams) -> list[ModelPerformance]:
        versions = table.column("model_version").to_pylist()
        times = np.asarray(table.column("p_us").to_numpy(zero_copy_only=False), dtype=np.int64)
        probs = np.asarray(
            table.column("prob").fill_null(np.nan).to_numpy(zero_copy_only=False),
            dtype=np.float64,
        )
        labels = np.asarray(table.column("label").to_numpy(zero_copy_only=False), dtype=np.int64)
        names = np.array(["\0" if v is None else v for v in versions], dtype=object)
        out = []
        for name in dict.fromkeys(names.tolist()):
            rows = names == name
            out.append(
                self._model(
                    None if name == "\0" else name,
                    times[rows],
                    probs[rows],
                    labels[rows],
                    params,
                )
            )
        return out

    def _model(
        self,
        version: str | None,
        times: npt.NDArray[np.int64],
        probs: npt.NDArray[np.float64],
        labels: npt.NDArray[np.int64],
        params: PerformanceParams,
    ) -> ModelPerformance:
        valid = (probs >= 0.0) & (probs <= 1.0)  # NaN (no probability) fails both
        pending = times + params.horizon_us > params.now_us
        keep = valid & ~pending
        y, p, t = labels[keep], probs[keep], times[keep]
        bins = metrics.calibration(y, p, params.bins, params.strategy.value)
        tops = metrics.top_k(y, p, list(params.top))
        return ModelPerformance(
            model_version=version,
            pending=int((valid & pending).sum()),
            invalid=int((~valid).sum()),
            roc=[RocPointRead(**asdict(r)) for r in metrics.roc_curve(y, p)],
            calibration=[CalibrationBin(**asdict(b)) for b in bins],
            top=[TopRead(**asdict(k)) for k in tops],
            series=self._series(y, p, t, params.interval),
            **scores(y, p),
        )

    @staticmethod
    def _series(
        y: npt.NDArray[np.int64],
        p: npt.NDArray[np.float64],
        t: npt.NDArray[np.int64],
        interval: Interval,
    ) -> list[PointRead]:
        starts = buckets(t, interval)
        points = []
        for start in np.unique(starts):
            rows = starts == start
            when = _EPOCH + timedelta(microseconds=int(start))
            points.append(PointRead(start=when, **scores(y[rows], p[rows])))
        return points
