"""Payloads of the feature serving API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dataintel.model.fields import ENTITY_ID_MAX

ValueStatus = Literal["no_data", "error", "building", "stale"]

# --- bounds of the features API (one id rule, bounded times) -------------------------------
# An entity id is what ingest accepts for user_id / cart_id / session_id: a non-empty string
# of at most ENTITY_ID_MAX (256) characters, any characters (a property used as an entity key
# follows the same rule: longer values are ignored by the feature, like a missing key).
ENTITY_ID_MAX_CHARS = ENTITY_ID_MAX
EntityIdText = Annotated[str, Field(min_length=1, max_length=ENTITY_ID_MAX_CHARS)]
# Evaluation times: the rule historical label rows follow too (1970-01-01 ≤ t < 2262-01-01,
# UTC): Arrow/pandas nanosecond timestamps end in 2262, ClickHouse's DateTime64 in 2299.
FEATURE_TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
FEATURE_TIME_MAX = datetime(2262, 1, 1, tzinfo=UTC)  # exclusive
FeatureTime = Annotated[
    datetime,
    Field(
        ge=FEATURE_TIME_MIN,
        lt=FEATURE_TIME_MAX,
        json_schema_extra={
            "formatMinimum": "1970-01-01T00:00:00Z",
            "formatExclusiveMaximum": "2262-01-01T00:00:00Z",
        },
    ),
]
MAX_IDS_PER_CALL = 1000
MAX_FEATURE_NAMES = 500
FeatureNameText = Annotated[str, Field(min_length=1, max_length=200)]


class EntityFeatures(BaseModel):
    entity_key: str = Field(description="user_id, cart_id, … (the feature's entity key).")
    entity_id: str
    as_of: datetime = Field(description="The evaluation time t of every value.")
    values: dict[str, Any] = Field(
        description="Value name → value. Empty windows: COUNT/SUM/COUNT_DISTINCT 0, others null."
    )
    status: dict[str, ValueStatus] = Field(
        default_factory=dict,
        description="Only for values that are not plain data: no_data (no event of the "
        "feature for this entity), error (could not be computed), building (backfill running; "
        "a batch feature: not computed yet), stale (a batch value older than its TTL).",
    )
    sources: dict[str, datetime] = Field(
        default_factory=dict,
        description="Per source '<pipeline>.<event>': time of the entity's latest event.",
    )
    computed_at: dict[str, datetime] = Field(
        default_factory=dict,
        description="Per batch feature: when the run that computed the served value ran.",
    )
    versions: dict[str, int] = Field(
        default_factory=dict, description="Feature name → deployed version served."
    )
    stale: bool | None = Field(
        default=None,
        description="Present (true) only when the online store was down or slow: this is the "
        "vector this process last served for the entity, as of `as_of`, `stale_age_seconds` "
        "old.",
    )
    stale_age_seconds: float | None = Field(
        default=None, description="With `stale`: how long ago the vector was served."
    )


class UserBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[EntityIdText] = Field(min_length=1, max_length=MAX_IDS_PER_CALL)
    features: list[FeatureNameText] | None = Field(
        default=None,
        max_length=MAX_FEATURE_NAMES,
        description="Feature or value names; default all.",
    )


class BatchFeatures(BaseModel):
    as_of: datetime
    results: list[EntityFeatures]


class WindowDefinition(BaseModel):
    window: str
    value_name: str
    seconds: int | None
    granularity: str | None
    granularity_seconds: int | None


class FeatureDefinition(BaseModel):
    name: str
    kind: Literal["aggregation", "derived", "batch"]
    version: int
    entity_key: str
    description: str
    pipeline_id: str | None = None
    source_event: str | None = None
    aggregation: str | None = None
    field: str | None = None
    expression: str | None = None
    windows: list[WindowDefinition] = []
    schedule: str | None = Field(default=None, description="batch: how often it is computed")
    ttl: str | None = Field(default=None, description="batch: served 'stale' when older")
    status: Literal["ready", "building"] = Field(
        description="building: the backfill of this version has not finished; its values "
        "are not served yet."
    )


class Definitions(BaseModel):
    project_id: str
    deployment_version: int | None
    features: list[FeatureDefinition]


class ComputeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_key: str = Field(default="user_id", pattern=r"^[a-z_][a-z0-9_]{0,63}$")
    entity_ids: list[EntityIdText] = Field(min_length=1, max_length=100)
    features: list[FeatureNameText] | None = Field(default=None, max_length=MAX_FEATURE_NAMES)


class ComputeResult(BaseModel):
    written: bool = Field(
        description="True when the recomputed state replaced the online state (the "
        "processor runs in this process); false: values computed, online store untouched."
    )
    as_of: datetime
    results: list[EntityFeatures]
