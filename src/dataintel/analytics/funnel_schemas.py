"""Request and response models of /v1/analytics/conversion."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from dataintel.analytics.funnels_spec import FunnelEntity, FunnelMode
from dataintel.api.types import UtcTime


class FunnelQuery(BaseModel):
    """The JSON body of POST /v1/analytics/conversion: the GET parameters, as lists."""

    model_config = ConfigDict(extra="forbid")

    steps: list[str] = Field(min_length=2, max_length=12, examples=[["cart_add", "purchase"]])
    from_: UtcTime | None = Field(default=None, alias="from")
    to: UtcTime | None = None
    mode: FunnelMode = FunnelMode.ORDERED
    window: str = Field(default="14d", max_length=16)
    step_windows: list[str] = Field(default_factory=list, max_length=12)
    exclude: list[str] = Field(default_factory=list, max_length=8)
    breakdown: str | None = Field(default=None, max_length=128)
    breakdown_limit: int = Field(default=25, ge=1, le=100)
    entity: FunnelEntity = FunnelEntity.USER


class StepRead(BaseModel):
    step: int
    label: str
    entered: int = Field(description="Entities that reached this step.")
    converted: int | None = Field(description="Of those, reached the next step.")
    dropped_off: int | None = Field(description="Stopped here; their window has elapsed.")
    in_window: int | None = Field(
        description="Stopped here so far, but a conversion window is still open at `to`."
    )
    conversion_from_previous: float | None
    conversion_from_first: float | None
    median_seconds_to_convert: float | None = Field(description="From the previous step.")
    average_seconds_to_convert: float | None


class FunnelGroupRead(BaseModel):
    value: str | None = Field(description="The breakdown value (null: none; $other: the rest).")
    excluded: int = Field(description="Entities dropped by an exclusion.")
    steps: list[StepRead]


class FunnelRead(BaseModel):
    project_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    mode: FunnelMode
    entity: FunnelEntity
    window_seconds: float
    steps: list[StepRead]
    excluded: int
    breakdown: str | None
    breakdown_values: list[FunnelGroupRead] | None

    model_config = ConfigDict(populate_by_name=True)
