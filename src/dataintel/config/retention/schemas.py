"""Retention payloads: the model's RetentionPolicy with its validation, and the last run."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from dataintel.model.retention import RetentionPolicy


class RetentionReplace(RetentionPolicy):
    """PUT: the whole policy; an omitted field is reset to its default (keep forever)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class RetentionRead(RetentionPolicy):
    project_id: str = Field(description="The project this (draft) policy belongs to.")


class RetentionRunRead(BaseModel):
    """Where the retention of a project stands: the deployed policy and the last run."""

    project_id: str
    deployed_version: int | None = Field(
        description="The deployed config version whose policy applies (null: none deployed)."
    )
    policy: RetentionPolicy = Field(description="The deployed policy (what the runner applies).")
    status: Literal["never", "running", "finished", "failed"] = Field(
        description="Of the last run; 'never': no run yet (no deployed policy, or not due)."
    )
    policy_version: int | None = Field(
        default=None, description="The deployed config version the last run applied."
    )
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_run_at: datetime | None = Field(default=None, description="When the next run is due.")
    deleted: dict[str, int] = Field(
        default_factory=dict,
        description="What the last run deleted per store: analytics (rows), event_log "
        "(entries), data_lake (files rewritten or dropped), dead_letters, reports.",
    )
    error: str | None = Field(default=None, description="Why the last run failed.")
