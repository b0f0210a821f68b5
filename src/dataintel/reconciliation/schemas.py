"""Requests and responses of the reconciliation routes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator


def _iso_day(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` text (or a date, in Python): pydantic alone would also read a
    number as seconds since the epoch, which the schema does not declare."""
    if isinstance(value, date):
        return value
    if not (isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-"):
        raise ValueError("must be an ISO 8601 date, e.g. 2026-01-31")
    return value


Day = Annotated[date, BeforeValidator(_iso_day), Field(ge=date(1970, 1, 1), le=date(2299, 12, 31))]
Status = Literal["ok", "repaired", "discrepant"]
MAX_DAYS = 31


class ReconciliationRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: list[Day] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_DAYS,
        description="The UTC days of arrival to check (at most 31, none in the future); "
        "default: yesterday and today.",
    )

    @field_validator("days")
    @classmethod
    def _not_future(cls, days: list[date] | None) -> list[date] | None:
        if days is None:
            return None
        today = datetime.now(UTC).date()
        if any(day > today for day in days):
            raise ValueError(f"must not be after today ({today.isoformat()}, UTC)")
        return sorted(set(days))


class ReconciliationRunAccepted(BaseModel):
    run_id: int = Field(description="Poll `GET /v1/jobs/runs/{run_id}` (the `Location`).")
    job: str
    days: list[date] | None


class ReconciliationReportRead(BaseModel):
    id: int
    project_id: str
    day: date = Field(description="The UTC day of arrival (`received_at`) checked.")
    run_id: int = Field(description="The job run that wrote it.")
    status: Status = Field(
        description="`ok`: the stores agree; `repaired`: every discrepancy found was "
        "repaired; `discrepant`: something was found that this run did not repair."
    )
    counts: dict[str, Any] = Field(
        description="Per store: events, purchases and revenue of the day (the project's "
        "own); each store's lag in the project's events; the platform cross-checks."
    )
    discrepancies: list[dict[str, Any]] = Field(
        description="Each finding: `kind`, `count`, and up to 1000 event or entity ids."
    )
    repairs: dict[str, Any] = Field(description="What the run repaired, or why it held back.")
    created_at: datetime


class ReconciliationReportPage(BaseModel):
    reports: list[ReconciliationReportRead]
    next_before: int | None = Field(
        description="Pass as `before` for the next page; null when this page is the last."
    )
