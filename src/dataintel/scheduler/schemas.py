"""Responses of the jobs API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

RunStatus = Literal["pending", "running", "finished", "failed"]


class JobRunRead(BaseModel):
    id: int
    job: str
    project_id: str
    slot: datetime = Field(description="The scheduled time, or when a manual run was queued.")
    manual: bool
    status: RunStatus
    attempts: int = Field(
        description="Times a worker took the run; more than 1: a holder died and another "
        "worker ran the slot again."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    outcome: dict[str, Any] | None = Field(description="What the run found (the job's JSON).")
    error: str | None


class JobRunPage(BaseModel):
    items: list[JobRunRead]
    next_after: int | None = Field(
        description="Pass as `after` for the next (older) page; null on the last page."
    )


class JobRead(BaseModel):
    name: str
    description: str
    every_seconds: float
    next_run_at: datetime = Field(description="The start of the next slot.")
    last_run: JobRunRead | None


class JobsRead(BaseModel):
    project_id: str
    jobs: list[JobRead]


class TriggeredRun(BaseModel):
    run_id: int
    job: str
    status: RunStatus = "pending"
