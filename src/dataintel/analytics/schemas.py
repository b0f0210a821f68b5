"""Analytics payloads: the overview (totals and a time series, each beside the previous
period)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from dataintel.api.types import UtcTime
from dataintel.model.snapshot import AnalyticsSettings

Number = int | float


class MetricValue(BaseModel):
    value: Number | None = Field(description="This period (null: undefined, e.g. a rate of 0/0).")
    previous: Number | None = Field(description="The same number over the previous period.")
    change: float | None = Field(
        description="(value - previous) / previous; null when previous is 0 or null."
    )


class OverviewMetrics(BaseModel):
    events: MetricValue
    active_users: MetricValue = Field(description="Distinct user_id with an event.")
    carts_created: MetricValue
    carts_abandoned: MetricValue
    carts_recovered: MetricValue
    recovery_rate: MetricValue = Field(description="carts_recovered / carts_abandoned.")
    revenue: MetricValue
    recovered_revenue: MetricValue
    interventions_sent: MetricValue


class OverviewPoint(BaseModel):
    start: UtcTime
    end: UtcTime
    previous_start: UtcTime | None = Field(description="The previous period's i-th point.")
    previous_end: UtcTime | None
    metrics: OverviewMetrics


class PeriodRead(BaseModel):
    start: UtcTime = Field(serialization_alias="from")
    end: UtcTime = Field(serialization_alias="to")


class OverviewRead(BaseModel):
    project_id: str
    period: PeriodRead
    previous_period: PeriodRead
    as_of: UtcTime = Field(description="Events before this instant are counted.")
    interval: str
    filters: list[str]
    settings: AnalyticsSettings = Field(description="The deployed analytics settings used.")
    config_version: int | None = Field(description="The deployed config version they are of.")
    totals: OverviewMetrics
    series: list[OverviewPoint]
