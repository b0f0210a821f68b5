"""Derived feature payloads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from dataintel.api.types import UtcTime, Version32
from dataintel.config.features.schemas import FEATURE_NAME
from dataintel.config.pipelines.schemas import not_null
from dataintel.model.expressions import MAX_LENGTH
from dataintel.model.fields import FIELD_NAME

EXPRESSION_HELP = (
    "Over value names of the same entity (e.g. checkouts_started_7d), hour_of_day, "
    "day_of_week, is_weekend, seconds_since(<LAST/FIRST value>); + - * / // % **, "
    "comparisons, and/or/not, x if c else y, min max abs round coalesce log exp sqrt. "
    "null propagates; division by zero gives null."
)


class DerivedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=FEATURE_NAME)
    description: str = Field(default="", max_length=2000)
    entity_key: str = Field(default="user_id", pattern=FIELD_NAME)
    expression: str = Field(min_length=1, max_length=MAX_LENGTH, description=EXPRESSION_HELP)
    enabled: StrictBool = True


class DerivedReplace(DerivedCreate):
    """PUT: the full definition; ``name`` may be omitted (it is the path's)."""

    name: str | None = Field(default=None, pattern=FEATURE_NAME)  # type: ignore[assignment]


class DerivedUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=2000)
    entity_key: str | None = Field(default=None, pattern=FIELD_NAME)
    expression: str | None = Field(default=None, min_length=1, max_length=MAX_LENGTH)
    enabled: StrictBool | None = None

    _not_null = field_validator("description", "entity_key", "expression", "enabled")(not_null)


class DerivedRead(BaseModel):
    name: str
    project_id: str
    description: str
    entity_key: str
    expression: str
    reads: list[str] = Field(description="The value names the expression reads.")
    enabled: bool
    version: Version32
    created_at: UtcTime
    updated_at: UtcTime
