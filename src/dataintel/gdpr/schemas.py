"""Requests and responses of the GDPR routes (Segment's vocabulary for request types)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RequestType(StrEnum):
    SUPPRESS_WITH_DELETE = "SUPPRESS_WITH_DELETE"
    DELETE_ONLY = "DELETE_ONLY"
    SUPPRESS_ONLY = "SUPPRESS_ONLY"
    UNSUPPRESS = "UNSUPPRESS"


class ForgetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: RequestType = Field(
        default=RequestType.SUPPRESS_WITH_DELETE,
        description="SUPPRESS_WITH_DELETE (default): stop collecting and erase; DELETE_ONLY: "
        "erase what exists; SUPPRESS_ONLY: stop collecting; UNSUPPRESS: collect again.",
    )


Status = Literal["pending", "running", "finished", "failed"]


class StoreStatus(BaseModel):
    store: str = Field(
        description="suppression, data_lake, event_log, analytics, online, dead_letters or reports."
    )
    status: Status
    attempts: int
    erased: int | None = Field(description="Rows, entries or entities erased, when finished.")
    error: str | None = Field(description="Why the last attempt failed (retried with back-off).")
    started_at: datetime | None
    finished_at: datetime | None


class GdprRequestRead(BaseModel):
    request_id: str
    project_id: str
    type: RequestType
    status: Status = Field(
        description="finished when every store is; failed when a store gave up (its reason is "
        "in `stores`); running while any store is being worked on."
    )
    error: str | None
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a failed store is retried.")
    stores: list[StoreStatus]
    propagation: Literal["not_configured", "pending", "delivered", "not_applicable"] = Field(
        description="The `gdpr.forget` message to the platform's other services."
    )


class GdprRequestPage(BaseModel):
    requests: list[GdprRequestRead]


class SubjectExport(BaseModel):
    """Everything the service holds about one user (GDPR Art. 15 / 20)."""

    project_id: str
    user_id: str
    generated_at: datetime
    suppressed: bool
    carts: list[str]
    sessions: list[str]
    events: list[dict[str, Any]]
    features: list[dict[str, Any]] = Field(description="Feature vectors of the user and carts.")
    dead_letters: list[dict[str, Any]]
    requests: list[GdprRequestRead]
