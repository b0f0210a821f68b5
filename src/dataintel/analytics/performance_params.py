"""The parameters of a performance answer, checked (errors name the parameter): shared by
GET /v1/analytics/performance and the report kind ``performance``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from dataintel.analytics.attribution_params import bad, duration_us, now_us, time_range
from dataintel.analytics.performance import MAX_POINTS, PerformanceParams, interval_count
from dataintel.analytics.performance_schemas import BinStrategy, Interval
from dataintel.model.snapshot import AnalyticsSettings

DEFAULT_TOP = (1.0, 5.0, 10.0, 20.0)


def performance_params(
    settings: AnalyticsSettings,
    start: datetime | None,
    end: datetime | None,
    interval: Interval,
    horizon: str | None,
    model_version: Sequence[str] | None,
    bins: int,
    strategy: BinStrategy,
    top: Sequence[float] | None,
) -> PerformanceParams:
    now = now_us()
    span = time_range(start, end, now)
    if interval_count(span, interval) > MAX_POINTS:
        raise bad(
            "interval", f"more than {MAX_POINTS} intervals in [from, to): choose a longer one"
        )
    for k in top or ():
        if not (math.isfinite(k) and 0 < k <= 100):
            raise bad("top", f"{k} is not a percentage in (0, 100]")
    if any(not 1 <= len(v) <= 256 for v in model_version or ()):
        raise bad("model_version", "must be 1 to 256 characters")
    horizon_name, horizon_us = duration_us("horizon", horizon, settings.outcome_horizon)
    return PerformanceParams(
        range=span,
        horizon=horizon_name,
        horizon_us=horizon_us,
        interval=interval,
        bins=bins,
        strategy=strategy,
        top=tuple(top) if top else DEFAULT_TOP,
        model_versions=tuple(model_version or ()),
        now_us=now,
    )
