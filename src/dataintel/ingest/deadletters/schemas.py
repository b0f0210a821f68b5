"""Dead-letter payloads."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from dataintel.api.types import AwareUtcTime, Id32, NonNegInt32, UtcTime, Version32
from dataintel.ingest.schemas import ItemError, ItemStatus, ReasonCode
from dataintel.model.fields import EVENT_NAME

DeadLetterStatus = Literal["pending", "replayed", "rejected_again"]
MAX_REPLAY = 10_000


def _iso_text(value: object) -> object:
    """Times are ISO-8601 text with an offset (pydantic would also take epoch numbers, which
    the documented ``format: date-time`` does not allow)."""
    numeric = isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()
    if numeric or isinstance(value, int | float):
        raise ValueError("expected an ISO-8601 date-time with an offset")
    return value


IsoTime = Annotated[AwareUtcTime, BeforeValidator(_iso_text)]


class DeadLetterRead(BaseModel):
    id: Id32
    project_id: str
    pipeline_id: str
    pipeline_version: Version32 | None = Field(description="The deployed version that rejected it.")
    event_id: str = Field(description="The client's event_id, or the one generated at arrival.")
    event: str | None
    received_at: UtcTime
    payload: Any = Field(description="The item as received (Segment: as mapped to an event).")
    reasons: list[ItemError] = Field(description="Pointers are relative to the payload.")
    status: DeadLetterStatus
    replayed_at: UtcTime | None


class DeadLetterPage(BaseModel):
    items: list[DeadLetterRead] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")
    limit: NonNegInt32


class DeadLetterReplay(BaseModel):
    """Which dead letters to replay: every condition given must hold (AND)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[Id32] | None = Field(default=None, min_length=1, max_length=MAX_REPLAY)
    status: list[Literal["pending", "rejected_again"]] = Field(
        default=["pending", "rejected_again"],
        min_length=1,
        description="Replayed letters are never replayed again (they are in the log).",
    )
    event: str | None = Field(default=None, pattern=EVENT_NAME)
    reason: ReasonCode | None = None
    since: IsoTime | None = None
    until: IsoTime | None = None
    limit: Annotated[int, Strict(), Field(ge=1, le=MAX_REPLAY)] = Field(
        default=1000, description="How many letters, oldest first (a JSON integer)."
    )


class ReplayItem(BaseModel):
    id: Id32
    event_id: str
    status: ItemStatus = Field(
        description="accepted: appended now; duplicate: the log already held it; rejected: "
        "still invalid (status rejected_again, reasons updated)."
    )
    errors: list[ItemError]


class ReplayRead(BaseModel):
    pipeline_version: Version32 = Field(
        description="The deployed version events were checked with."
    )
    accepted: NonNegInt32
    duplicate: NonNegInt32
    rejected: NonNegInt32
    items: list[ReplayItem]
    has_more: bool = Field(description="More dead letters match: call replay again.")
