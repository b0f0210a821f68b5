"""Deployment payloads: immutable config versions, the pending diff, rollback."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from dataintel.api.types import NonNegInt32, NonNegInt64, UtcTime, Version32
from dataintel.config.deployments.diff import Change
from dataintel.model.snapshot import ConfigSnapshot


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(default="", max_length=2000, description="Why this version exists.")


class DeploymentRollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(
        default=None,
        max_length=2000,
        description="Defaults to 'rollback to version <n>'.",
    )
    force: StrictBool = Field(
        default=False,
        description="A rollback also resets the draft to the re-activated config. When the "
        "draft has undeployed changes the rollback is refused (409) unless force is true, "
        "in which case those changes are discarded.",
    )


class PendingRead(BaseModel):
    project_id: str
    base_version: Version32 | None = Field(description="The active version the diff starts from.")
    has_changes: bool
    summary: dict[str, NonNegInt32] = Field(description="Number of changes per action.")
    changes: list[Change] = Field(description="What a deploy would change, active -> draft.")


class DeploymentRead(BaseModel):
    project_id: str
    version: Version32
    kind: Literal["deploy", "rollback"]
    rollback_of: Version32 | None = Field(description="For a rollback: the version re-activated.")
    active: bool = Field(description="This version is the one in force.")
    message: str
    created_by: str
    created_at: UtcTime
    summary: dict[str, NonNegInt32] = Field(description="Number of changes per action.")
    changes: list[Change] = Field(description="What this version changed from the previous one.")


class BackfillRead(BaseModel):
    state: Literal["running", "done", "failed"]
    fields: list[str] = Field(description="Feature versions built, '<feature>@<version>'.")
    events_total: NonNegInt64 = Field(description="Events of their sources in the analytics store.")
    events_done: NonNegInt64
    entities: NonNegInt64 = Field(description="Entities whose state has been written.")
    error: str | None
    started_at: UtcTime
    updated_at: UtcTime
    finished_at: UtcTime | None


class DeploymentDetail(DeploymentRead):
    snapshot: ConfigSnapshot = Field(description="The whole project config of this version.")
    backfill: BackfillRead | None = Field(
        default=None,
        description="Building the online state of this version's new or changed features "
        "from history; their values are served once it is done (null: nothing to build).",
    )


class DeploymentPage(BaseModel):
    items: list[DeploymentRead] = Field(description="Newest first.")
    total: NonNegInt32
    limit: NonNegInt32
    offset: NonNegInt32
