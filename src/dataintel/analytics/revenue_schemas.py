"""Response models of ``GET /v1/analytics/revenue`` (attribution and holdout uplift)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from dataintel.analytics.attribution_sql import Model


class Estimate(BaseModel):
    """A point estimate and its 95 % interval (null when it cannot be computed)."""

    estimate: float | None = None
    low: float | None = None
    high: float | None = None

    def scaled(self, factor: float) -> Estimate:
        def times(value: float | None) -> float | None:
            return None if value is None else value * factor

        return Estimate(estimate=times(self.estimate), low=times(self.low), high=times(self.high))


class ArmRead(BaseModel):
    carts: int = Field(description="Carts of the group whose outcome is known.")
    recovered: int = Field(description="Carts with an order within the horizon.")
    recovery_rate: float | None
    recovery_rate_low: float | None = Field(description="Wilson 95 % interval, low end.")
    recovery_rate_high: float | None
    revenue: float = Field(description="Revenue of the group's orders within the horizon.")
    revenue_per_cart: float | None


class ComparisonRead(BaseModel):
    """Treatment minus control."""

    recovery_rate_difference: Estimate = Field(
        default_factory=Estimate, description="Newcombe hybrid score 95 % interval."
    )
    relative_recovery_lift: float | None = None
    revenue_per_cart_difference: Estimate = Field(
        default_factory=Estimate, description="Welch t 95 % interval."
    )
    welch_df: float | None = Field(None, description="Welch-Satterthwaite degrees of freedom.")
    incremental_conversions: Estimate = Field(
        default_factory=Estimate,
        description="recovery_rate_difference x treated carts (interval scaled alike).",
    )
    incremental_revenue: Estimate = Field(
        default_factory=Estimate,
        description="revenue_per_cart_difference x treated carts (interval scaled alike).",
    )


class UpliftArm(BaseModel):
    value: str | None = Field(description="The channel or action (null: not given).")
    treatment: ArmRead
    uplift: ComparisonRead


class UpliftRead(BaseModel):
    horizon: str
    confidence: float
    rate_method: str
    revenue_method: str
    control: ArmRead
    treatment: ArmRead
    uplift: ComparisonRead
    by_channel: list[UpliftArm]
    by_action: list[UpliftArm]
    pending_carts: int = Field(description="Assigned carts whose horizon has not ended yet.")
    excluded_carts: int = Field(description="Carts both held out and intervened on.")


class Attributed(BaseModel):
    value: str | None = Field(description="The channel, action or campaign (null: not given).")
    conversions: float = Field(description="Sum of this value's weights.")
    revenue: float = Field(description="Sum of weight x revenue.")
    touches: int = Field(description="Touchpoints of this value inside a conversion's window.")
    assisted_conversions: int = Field(description="Conversions with at least one such touch.")


class Totals(BaseModel):
    conversions: int
    revenue: float


class RevenueRead(BaseModel):
    project_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    model: Model
    window: str
    half_life: str | None
    currency: str | None
    purchase_event: str
    conversions: int
    revenue: float
    attributed: Totals
    unattributed: Totals
    by_channel: list[Attributed]
    by_action: list[Attributed]
    by_campaign: list[Attributed]
    incremental: UpliftRead

    model_config = {"populate_by_name": True}
