"""Report payloads."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dataintel.api.types import NonNegInt32, NonNegInt64, UtcTime
from dataintel.reports.formats import ReportFormat

ReportStatus = Literal["queued", "running", "done", "failed", "expired"]
REPORT_ID = r"^rep_[0-9a-f]{32}$"


class ReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(
        max_length=64,
        description="What the report holds: `events` (the event export query), "
        "`event_counts` (events per event name per UTC day), or an analysis. See "
        "docs/reports.md for each kind's parameters.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The kind's parameters (checked against its model)."
    )
    format: ReportFormat = Field(description="csv, json, parquet or pdf (with charts).")
    title: str | None = Field(
        default=None, min_length=1, max_length=200, description="Default: the kind's title."
    )


class ReportFile(BaseModel):
    name: str
    media_type: str
    size_bytes: NonNegInt64


class ReportRead(BaseModel):
    id: str
    project_id: str
    kind: str
    params: dict[str, Any]
    format: ReportFormat
    status: ReportStatus = Field(
        description="queued → running → done | failed; done and failed become expired."
    )
    title: str | None
    attempts: NonNegInt32 = Field(description="Runs started (a run a dead worker left counts).")
    error: str | None = Field(description="Why it failed (status failed).")
    created_at: UtcTime
    started_at: UtcTime | None
    finished_at: UtcTime | None
    expires_at: UtcTime | None
    file: ReportFile | None = Field(description="The file, once done.")
    url: str = Field(description="GET it: the file when done, this status before.")
