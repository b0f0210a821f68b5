"""Seasonal robust anomaly scoring of one metric bucket, as a pure function.

The baseline of an hourly bucket is the past buckets of the same season (the same hour of
the week, of the day, or every hour) within the training window, without the buckets that
were themselves anomalous. Its score is the modified z of Iglewicz and Hoaglin,
``z = 0.6745 · (x - median) / MAD``, where MAD never counts as less than a minimum band
(a share of the median, and one unit), so a constant series does not alert on decimals.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from dataintel.model.monitoring import AnomalySettings, Seasonality

Status = Literal["ok", "anomaly", "not_evaluated", "low_volume"]
CONSISTENCY = 0.6745  # Φ⁻¹(3/4): MAD / 0.6745 estimates sigma of a normal distribution


def season(moment: datetime, seasonality: Seasonality) -> int:
    """The seasonal key of an hourly bucket (UTC): hour of the week 0..167 (Monday 0h = 0),
    hour of the day 0..23, or 0."""
    if seasonality == "hour_of_week":
        return moment.weekday() * 24 + moment.hour
    if seasonality == "hour_of_day":
        return moment.hour
    return 0


@dataclass(frozen=True, slots=True)
class Point:
    """A past bucket: its value and the events behind it (a count, a rate's denominator)."""

    value: float
    support: float


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    expected: float | None = None  # the baseline median
    spread: float | None = None  # the MAD used (after the minimum band)
    score: float | None = None  # the modified z
    critical: bool = False
    baseline: int = 0  # points in the baseline


def judge(
    value: float, baseline: Sequence[Point], settings: AnomalySettings, unit: float
) -> Verdict:
    """The verdict on ``value`` against its seasonal ``baseline`` (anomalous points already
    left out); ``unit``: the smallest meaningful change of the metric (1 event, 0.01 of a
    rate)."""
    n = len(baseline)
    if n < settings.warmup:
        return Verdict("not_evaluated", baseline=n)
    if statistics.median(p.support for p in baseline) < settings.min_volume:
        return Verdict("low_volume", baseline=n)
    values = [p.value for p in baseline]
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    spread = max(mad, settings.min_band_ratio * abs(median), unit)
    score = CONSISTENCY * (value - median) / spread
    outside = abs(score) > settings.threshold and (
        settings.direction == "both"
        or (settings.direction == "spike" and score > 0)
        or (settings.direction == "drop" and score < 0)
    )
    return Verdict(
        "anomaly" if outside else "ok",
        expected=median,
        spread=spread,
        score=score,
        critical=outside and abs(score) > 1.2 * settings.threshold,
        baseline=n,
    )
