"""Alert payloads: the alert as read, a page of alerts, and the resolve request."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dataintel.quality.alerts import Kind, Severity

Status = Literal["open", "acknowledged", "resolved"]
ManualResolution = Literal["fixed", "expected", "false_positive", "no_action"]


class AlertRead(BaseModel):
    id: int
    project_id: str
    fingerprint: str = Field(description="What identifies the incident across evaluations.")
    status: Status
    kind: Kind
    severity: Severity
    source: str = Field(description="What raised it (a job name).")
    title: str
    detail: dict[str, Any] = Field(description="The measurement behind it (JSON).")
    first_seen: datetime
    last_seen: datetime
    occurrences: int = Field(description="Evaluations that found it failing.")
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution: Literal["fixed", "expected", "false_positive", "no_action", "cleared"] | None = (
        Field(default=None, description="'cleared': resolved by itself when the condition cleared.")
    )
    resolved_by: str | None = None


class AlertPage(BaseModel):
    alerts: list[AlertRead]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this page is the last."
    )


class AlertResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ManualResolution = Field(
        description="fixed, expected (a real change, not a fault), false_positive, no_action."
    )
