"""Query parameters of the revenue and performance routes, checked into typed values; a bad
one is a 422 problem naming it (``/query/<name>``) and the reason."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dataintel.analytics.attribution_sql import Model
from dataintel.api.types import TIME_MAX, TIME_MIN
from dataintel.errors import InvalidInput
from dataintel.model.snapshot import AnalyticsSettings
from dataintel.model.windows import format_seconds, parse_window

DEFAULT_RANGE = timedelta(days=30)
DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bad(name: str, reason: str) -> InvalidInput:
    return InvalidInput.field(["query", name], reason)


def to_us(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


def now_us() -> int:
    """The analyses' "now" in µs: the current minute (analytics/cache.py)."""
    minute_us = 60_000_000
    return time.time_ns() // 1000 // minute_us * minute_us


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime

    @property
    def start_us(self) -> int:
        return to_us(self.start)

    @property
    def end_us(self) -> int:
        return to_us(self.end)


def time_range(start: datetime | None, end: datetime | None, now: int) -> TimeRange:
    """[from, to): ``to`` defaults to now, ``from`` to 30 days before ``to``."""
    stop = end or min(TIME_MAX, _EPOCH + timedelta(microseconds=now))
    begin = start or max(TIME_MIN, stop - DEFAULT_RANGE)
    if begin >= stop:
        raise bad("from", "must be before 'to'")
    return TimeRange(begin, stop)


def duration_us(name: str, text: str | None, default: str) -> tuple[str, int]:
    """A duration in the window syntax (30s … 365d) as its canonical text and µs."""
    try:
        window = parse_window(text if text is not None else default)
    except ValueError as exc:
        if text is None:  # the deployed setting itself is unusable
            raise bad(name, f"the project's setting is invalid: {exc}; pass {name}") from exc
        raise bad(name, str(exc).replace("window", "duration")) from exc
    if window.seconds is None:
        raise bad(name, "must be a duration such as 30m, 24h or 7d, not 'lifetime'")
    return window.name, window.seconds * 1_000_000


@dataclass(frozen=True, slots=True)
class RevenueParams:
    range: TimeRange
    model: Model
    window: str
    window_us: int
    half_life: str | None
    half_life_us: int
    horizon: str
    horizon_us: int
    currency: str | None
    now_us: int


def revenue_params(
    settings: AnalyticsSettings,
    *,
    start: datetime | None,
    end: datetime | None,
    model: Model,
    window: str | None,
    half_life: str | None,
    horizon: str | None,
    currency: str | None,
) -> RevenueParams:
    now = now_us()
    span = time_range(start, end, now)
    window_name, window_us = duration_us("window", window, settings.attribution_window)
    if half_life is not None and model is not Model.TIME_DECAY:
        raise bad("half_life", "applies to model=time_decay only")
    if half_life is None:  # PostHog's default: a quarter of the window, at least one day
        half_us = max(window_us // 4, DAY_US)
        half_name = format_seconds(half_us // 1_000_000)
    else:
        half_name, half_us = duration_us("half_life", half_life, "1d")
    horizon_name, horizon_us = duration_us("horizon", horizon, settings.outcome_horizon)
    return RevenueParams(
        range=span,
        model=model,
        window=window_name,
        window_us=window_us,
        half_life=half_name if model is Model.TIME_DECAY else None,
        half_life_us=half_us,
        horizon=horizon_name,
        horizon_us=horizon_us,
        currency=currency,
        now_us=now,
    )
