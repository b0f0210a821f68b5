"""Feature statistics payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class FeatureDayRead(BaseModel):
    day: datetime = Field(description="The UTC day (its start).")
    count: int = Field(description="Events of the feature's source event that day.")
    nulls: int = Field(description="Of those, without a numeric value of the source field.")
    mean: float | None
    quantiles: dict[str, float] = Field(description='By quantile ("0.5": the median).')
    histogram: dict[str, Any] = Field(
        description="edges (the day's own deciles) and counts per bin (-inf, e1], ..., (e9, inf)."
    )
    drift: dict[str, Any] = Field(
        description="status (ok, warning, critical, not_evaluated), psi, js, bins, and the "
        "values on each side (reference, current)."
    )
    computed_at: datetime


class FeatureStatisticsRead(BaseModel):
    feature: str
    days: list[FeatureDayRead] = Field(description="Newest first.")
