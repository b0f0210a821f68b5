"""Batch feature payloads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from dataintel.api.types import UtcTime, Version32
from dataintel.config.features.schemas import FEATURE_NAME
from dataintel.config.pipelines.schemas import not_null
from dataintel.model.aggregations import Aggregation
from dataintel.model.batch import EXPRESSION_MAX, duration_seconds
from dataintel.model.fields import EVENT_NAME, FIELD_NAME, SLUG
from dataintel.model.windows import parse_window

EXPRESSION_HELP = (
    "One aggregate SQL expression over the project's events of the window, per entity: "
    "count(*), count(DISTINCT x), count_if(cond), sum, avg, min, max; + - * / %, "
    "comparisons, AND/OR/NOT, CASE, nullif, coalesce, abs, round, greatest, least, "
    "CAST(x AS DOUBLE). Names are envelope fields (event, user_id, cart_id, session_id, "
    "event_id, pipeline_id, timestamp) or declared properties (numbers are read as numbers). "
    "No subqueries, tables or other functions."
)


def _window(v: str) -> str:
    parse_window(v)
    return v


def _duration(v: str) -> str:
    duration_seconds(v)
    return v


class BatchFeatureCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=FEATURE_NAME)
    description: str = Field(default="", max_length=2000)
    entity_key: str = Field(
        default="user_id",
        pattern=FIELD_NAME,
        description="user_id, cart_id, session_id or any declared string/number property "
        "(e.g. store_id, category_code).",
    )
    pipeline_id: str | None = Field(
        default=None, pattern=SLUG, description="The source pipeline (aggregation: required)."
    )
    source_event: str | None = Field(
        default=None, pattern=EVENT_NAME, description="The source event (aggregation: required)."
    )
    aggregation: Aggregation | None = Field(default=None, description="Or give expression.")
    field: str | None = Field(
        default=None, pattern=FIELD_NAME, description="Aggregated field; optional for COUNT."
    )
    expression: str | None = Field(
        default=None, min_length=1, max_length=EXPRESSION_MAX, description=EXPRESSION_HELP
    )
    window: str = Field(default="30d", max_length=16, description="30s … 365d or lifetime.")
    schedule: str = Field(
        default="1h", max_length=16, description="How often it is computed (30s … 365d)."
    )
    ttl: str = Field(
        default="2h",
        max_length=16,
        description="Freshness: a value older than this is served with status 'stale'.",
    )
    enabled: StrictBool = True

    _window = field_validator("window")(_window)
    _durations = field_validator("schedule", "ttl")(_duration)

    @model_validator(mode="after")
    def _one_form(self) -> BatchFeatureCreate:
        if (self.expression is None) == (self.aggregation is None):
            raise ValueError("give either aggregation (with source_event) or expression")
        return self


class BatchFeatureReplace(BatchFeatureCreate):
    """PUT: the full definition; ``name`` may be omitted (it is the path's)."""

    name: str | None = Field(default=None, pattern=FEATURE_NAME)  # type: ignore[assignment]


class BatchFeatureUpdate(BaseModel):
    """PATCH: the fields given replace the stored ones; ``pipeline_id``, ``source_event``,
    ``aggregation``, ``field`` and ``expression`` may be set to null (switching forms)."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=2000)
    entity_key: str | None = Field(default=None, pattern=FIELD_NAME)
    pipeline_id: str | None = Field(default=None, pattern=SLUG)
    source_event: str | None = Field(default=None, pattern=EVENT_NAME)
    aggregation: Aggregation | None = None
    field: str | None = Field(default=None, pattern=FIELD_NAME)
    expression: str | None = Field(default=None, min_length=1, max_length=EXPRESSION_MAX)
    window: str | None = Field(default=None, max_length=16)
    schedule: str | None = Field(default=None, max_length=16)
    ttl: str | None = Field(default=None, max_length=16)
    enabled: StrictBool | None = None

    _not_null = field_validator(
        "description", "entity_key", "window", "schedule", "ttl", "enabled"
    )(not_null)

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        return _window(v)

    @field_validator("schedule", "ttl")
    @classmethod
    def _durations(cls, v: str) -> str:
        return _duration(v)


class BatchFeatureRead(BaseModel):
    name: str
    project_id: str
    description: str
    entity_key: str
    pipeline_id: str | None
    source_event: str | None
    aggregation: Aggregation | None
    field: str | None
    expression: str | None
    window: str
    schedule: str
    ttl: str
    enabled: bool
    version: Version32 = Field(description="Bumped on every change of the definition.")
    reads: list[str] = Field(description="The fields the definition reads.")
    created_at: UtcTime
    updated_at: UtcTime
