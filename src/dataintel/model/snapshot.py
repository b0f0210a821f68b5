"""The whole config of a project as one immutable, comparable value.

A deployment stores one ConfigSnapshot; the draft (what the config API edits) is read as
one too, so "pending changes" is simply diff(active snapshot, draft snapshot).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from dataintel.model.aggregations import Aggregation
from dataintel.model.fields import FieldSpec, UnknownPolicy

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


class AnalyticsSettings(BaseModel):
    """How the analytics plane reads a project's events (deployed with the rest of the config).

    Durations use the window syntax (``30m``, ``7d``; model/windows.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    purchase_event: str = "purchase"  # the event that means "purchase"
    revenue_field: str = "revenue"  # its revenue property (number)
    currency_field: str = "currency"
    cart_events: list[str] = ["cart_add", "checkout_start"]  # events that open / touch a cart
    abandon_after: str = "30m"  # a cart with no purchase this long after its last event
    outcome_horizon: str = "7d"  # abandoned → purchased within this: recovered (and outcomes)
    attribution_window: str = "7d"  # interventions this long before a purchase may get credit


class ConfigSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pipelines: list[PipelineSpec] = []
    features: list[FeatureSpec] = []
    derived: list[DerivedSpec] = []
    analytics: AnalyticsSettings = AnalyticsSettings()

    def pipeline(self, pipeline_id: str) -> PipelineSpec | None:
        return next((p for p in self.pipelines if p.id == pipeline_id), None)

    def feature(self, name: str) -> FeatureSpec | None:
        return next((f for f in self.features if f.name == name), None)
