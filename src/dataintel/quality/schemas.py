"""Payloads of /v1/quality: status, results, validate (requests forbid extra fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dataintel.api.types import UtcTime
from dataintel.model.fields import SLUG

MAX_SAMPLE = 1000  # events one validate call may check
DAY = 86_400


class RunParams(BaseModel):
    """The window a run evaluates: ``[end - window_seconds, end)`` of event time."""

    model_config = ConfigDict(extra="forbid")

    window_seconds: int = Field(
        default=DAY, ge=60, le=90 * DAY, description="Length of the window (default 24 h)."
    )
    end: UtcTime | None = Field(
        default=None, description="End of the window (default: the run's slot, i.e. now)."
    )


class ValidateRequest(RunParams):
    """Without ``events``: run the deployed rules now (202 + the run's id). With ``events``:
    check them against the deployed schema of ``pipeline`` and the row-level rules, without
    storing anything."""

    events: list[Any] | None = Field(
        default=None, max_length=MAX_SAMPLE, description="A sample of events to validate."
    )
    pipeline: str | None = Field(
        default=None, pattern=SLUG, description="The pipeline the sample is sent to."
    )


class RunAccepted(BaseModel):
    run_id: int
    job: str = "quality.rules"


class Problem(BaseModel):
    code: str = Field(description="An ingest reason code, or 'rule_failed'.")
    pointer: str = ""
    message: str
    rule: str | None = None


class EventVerdict(BaseModel):
    index: int = Field(description="Position in the sample.")
    event_id: str | None = None
    accepted: bool = Field(description="Whether ingest would accept it (schema).")
    problems: list[Problem]


class RuleVerdict(BaseModel):
    rule: str
    type: str
    passing: int
    total: int
    pass_fraction: float | None
    status: Literal["pass", "fail"]


class ValidateReport(BaseModel):
    events: list[EventVerdict]
    rules: list[RuleVerdict] = Field(
        description="Row-level rules over the accepted events of the sample (missing, range, "
        "accepted_values, regex, custom_sql)."
    )


class ResultRead(BaseModel):
    id: int
    rule: str
    type: str
    dimension: str
    severity: str
    dataset: str
    pipeline: str | None
    column: str | None
    run_id: int | None
    slot: datetime
    evaluated_at: datetime
    window_start: datetime
    window_end: datetime
    observed: float | None = Field(
        description="Failing share in % (row-level rules) or the newest event's age in s."
    )
    passing: int | None
    total: int | None
    pass_fraction: float | None
    status: Literal["pass", "fail", "error"]
    detail: dict[str, Any]


class ResultPage(BaseModel):
    results: list[ResultRead]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page.")


class ScopeStatus(BaseModel):
    """The quality of one pipeline, event or feature, from its rules' latest results."""

    name: str
    score: float | None = Field(description="0-100; null when no rule has a score yet.")
    dimensions: dict[str, float]
    rules: int
    failing_rules: list[str]
    errored_rules: list[str]
    last_run: datetime | None
    open_alerts: int = Field(default=0, description="Its rules with an open or acknowledged alert.")


class StatusRead(BaseModel):
    project_id: str
    deployed_version: int | None
    overall: ScopeStatus
    pipelines: list[ScopeStatus]
    events: list[ScopeStatus]
    features: list[ScopeStatus]
