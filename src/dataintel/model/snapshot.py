"""The whole config of a project as one immutable, comparable value.

A deployment stores one ConfigSnapshot; the draft (what the config API edits) is read as
one too, so "pending changes" is simply diff(active snapshot, draft snapshot).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from dataintel.model.aggregations import Aggregation
from dataintel.model.batch import BatchFeatureSpec
from dataintel.model.fields import EVENT_NAME, FIELD_NAME, FieldSpec, UnknownPolicy
from dataintel.model.monitoring import MonitoringSettings
from dataintel.model.quality import QualityConfig
from dataintel.model.retention import RetentionPolicy
from dataintel.model.windows import LIFETIME, parse_window

M = TypeVar("M", bound=BaseModel)


def model_of(model: type[M], source: object, **given: Any) -> M:
    """A ``model`` validated from the attributes of ``source`` (a row, another model) named
    as its fields; the fields in ``given`` take those values instead (and are not read)."""
    values = {name: getattr(source, name) for name in model.model_fields if name not in given}
    return model.model_validate({**values, **given})


class EventSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    enabled: bool = True
    fields: list[FieldSpec] = []

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


class PipelineSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    description: str = ""
    unknown_properties: UnknownPolicy = "allow"
    events: list[EventSpec] = []

    def event(self, name: str) -> EventSpec | None:
        return next((e for e in self.events if e.name == name), None)


class FeatureSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    pipeline_id: str
    source_event: str
    entity_key: str = "user_id"
    aggregation: Aggregation
    field: str | None = None
    windows: list[str]
    enabled: bool = True
    version: int = 1


class DerivedSpec(BaseModel):
    """A derived feature: an expression over the entity's other feature values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    entity_key: str = "user_id"
    expression: str
    enabled: bool = True
    version: int = 1


EventName = Annotated[str, Field(pattern=EVENT_NAME)]
PropertyName = Annotated[str, Field(pattern=FIELD_NAME)]


class AnalyticsSettings(BaseModel):
    """How the analytics plane reads a project's events (deployed with the rest of the config).

    Durations use the window syntax (``30m``, ``7d``; model/windows.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    purchase_event: EventName = Field(
        default="purchase", description="The event that means 'purchase'."
    )
    revenue_field: PropertyName = Field(
        default="revenue", description="The purchase event's revenue property (a number)."
    )
    currency_field: PropertyName = Field(
        default="currency", description="The purchase event's currency property."
    )
    cart_events: list[EventName] = Field(
        default=["cart_add", "checkout_start"],
        min_length=1,
        max_length=50,
        description="Events that open or touch a cart (with the envelope's cart_id).",
    )
    abandon_after: str = Field(
        default="30m",
        description="A cart is abandoned when no cart event and no purchase follows its last "
        "cart event within this idle time.",
    )
    outcome_horizon: str = Field(
        default="7d",
        description="An abandoned cart purchased within this time after its abandonment is "
        "recovered (also the outcome horizon of predictions).",
    )
    attribution_window: str = Field(
        default="7d",
        description="Interventions this long before a purchase may get credit for it.",
    )

    @field_validator("abandon_after", "outcome_horizon", "attribution_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        if value == LIFETIME:
            raise ValueError("must be a duration such as 30m, 24h or 7d, not 'lifetime'")
        parse_window(value)
        return value

    @field_validator("cart_events")
    @classmethod
    def _distinct(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists an event twice")
        purchase = info.data.get("purchase_event")
        if purchase in value:
            raise ValueError(f"cannot contain the purchase_event {purchase!r}")
        return value

    def seconds(self, name: str) -> int:
        """A duration setting (``abandon_after``, ...) in seconds."""
        seconds = parse_window(getattr(self, name)).seconds
        assert seconds is not None  # lifetime is refused above
        return seconds


class ConfigSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pipelines: list[PipelineSpec] = []
    features: list[FeatureSpec] = []
    derived: list[DerivedSpec] = []
    batch: list[BatchFeatureSpec] = []
    analytics: AnalyticsSettings = AnalyticsSettings()
    retention: RetentionPolicy = RetentionPolicy()
    monitoring: MonitoringSettings = MonitoringSettings()
    quality: QualityConfig = QualityConfig()

    def pipeline(self, pipeline_id: str) -> PipelineSpec | None:
        return next((p for p in self.pipelines if p.id == pipeline_id), None)

    def feature(self, name: str) -> FeatureSpec | None:
        return next((f for f in self.features if f.name == name), None)
