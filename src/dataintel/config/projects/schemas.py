"""Project (tenant) payloads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dataintel.api.types import UtcTime, Version32
from dataintel.model.fields import SLUG


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SLUG, description="Stable id used in every URL, e.g. 'acme-shop'.")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    active_version: Version32 | None = Field(description="The deployed config version in force.")
    created_at: UtcTime
    updated_at: UtcTime
