"""Payloads of the feature serving API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ValueStatus = Literal["no_data", "error", "building"]
ENTITY_ID = Field(min_length=1, max_length=256)


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
        "feature for this entity), error (could not be computed), building (backfill running).",
    )
    sources: dict[str, datetime] = Field(
        default_factory=dict,
        description="Per source '<pipeline>.<event>': time of the entity's latest event.",
    )
    versions: dict[str, int] = Field(
        default_factory=dict, description="Feature name → deployed version served."
    )


class UserBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_ids: list[str] = Field(min_length=1, max_length=1000)
    features: list[str] | None = Field(
        default=None, max_length=500, description="Feature or value names; default all."
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
    kind: Literal["aggregation", "derived"]
    version: int
    entity_key: str
    description: str
    pipeline_id: str | None = None
    source_event: str | None = None
    aggregation: str | None = None
    field: str | None = None
    expression: str | None = None
    windows: list[WindowDefinition] = []
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
    entity_ids: list[str] = Field(min_length=1, max_length=100)
    features: list[str] | None = Field(default=None, max_length=500)


class ComputeResult(BaseModel):
    written: bool = Field(
        description="True when the recomputed state replaced the online state (the "
        "processor runs in this process); false: values computed, online store untouched."
    )
    as_of: datetime
    results: list[EntityFeatures]
