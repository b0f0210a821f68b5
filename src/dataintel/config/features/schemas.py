"""Feature definition payloads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from dataintel.api.types import NonNegInt64, UtcTime, Version32
from dataintel.config.pipelines.schemas import not_null
from dataintel.model.aggregations import Aggregation
from dataintel.model.fields import EVENT_NAME, FIELD_NAME, SLUG
from dataintel.model.windows import DEFAULT_WINDOWS, parse_window

FEATURE_NAME = r"^[a-z][a-z0-9_]{0,127}$"


def _check_windows(v: list[str]) -> list[str]:
    spans = [parse_window(w).seconds for w in v]
    if len(set(spans)) != len(spans):
        raise ValueError("windows must not repeat (e.g. '60m' and '1h' are the same window)")
    return v


class FeatureCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=FEATURE_NAME)
    description: str = Field(default="", max_length=2000)
    pipeline_id: str = Field(pattern=SLUG)
    source_event: str = Field(pattern=EVENT_NAME)
    entity_key: str = Field(
        default="user_id",
        pattern=FIELD_NAME,
        description="user_id, cart_id, session_id or a declared string/number field.",
    )
    aggregation: Aggregation
    field: str | None = Field(
        default=None, pattern=FIELD_NAME, description="Aggregated field; optional for COUNT."
    )
    windows: list[str] = Field(
        default_factory=lambda: list(DEFAULT_WINDOWS), min_length=1, max_length=20
    )
    enabled: StrictBool = True

    _windows = field_validator("windows")(_check_windows)


class FeatureReplace(FeatureCreate):
    """PUT: the full definition; ``name`` may be omitted (it is the path's)."""

    name: str | None = Field(default=None, pattern=FEATURE_NAME)  # type: ignore[assignment]


class FeatureUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=2000)
    pipeline_id: str | None = Field(default=None, pattern=SLUG)
    source_event: str | None = Field(default=None, pattern=EVENT_NAME)
    entity_key: str | None = Field(default=None, pattern=FIELD_NAME)
    aggregation: Aggregation | None = None
    field: str | None = Field(default=None, pattern=FIELD_NAME)
    windows: list[str] | None = Field(default=None, min_length=1, max_length=20)
    enabled: StrictBool | None = None

    # Only `field` may be set to null (a COUNT without a field); other nulls are refused.
    _not_null = field_validator(
        "description",
        "pipeline_id",
        "source_event",
        "entity_key",
        "aggregation",
        "windows",
        "enabled",
    )(not_null)

    @field_validator("windows")
    @classmethod
    def _windows(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_windows(v)


class WindowRead(BaseModel):
    window: str
    seconds: NonNegInt64 | None = Field(description="null for lifetime")
    granularity: str | None = Field(description="g(W): the tile size, e.g. '1s', '1m'")
    granularity_seconds: NonNegInt64 | None
    value_name: str = Field(description="<feature>_<window>")


class FeatureRead(BaseModel):
    name: str
    project_id: str
    description: str
    pipeline_id: str
    source_event: str
    entity_key: str
    aggregation: Aggregation
    field: str | None
    windows: list[WindowRead]
    enabled: bool
    version: Version32 = Field(description="Bumped on every change of the definition.")
    created_at: UtcTime
    updated_at: UtcTime
