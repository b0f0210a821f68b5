"""Ingest payloads as documented in OpenAPI.

The hot path never builds these models: it validates with precompiled checks and answers
with orjson-encoded dicts of exactly these shapes (tests compare them).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from dataintel.api.types import NonNegInt32, NonNegInt64, UtcTime

ReasonCode = Literal[
    "missing_field",
    "wrong_type",
    "unknown_event",
    "event_disabled",
    "unknown_property",
    "invalid_timestamp",
    "future_timestamp",
    "too_late",
    "invalid_envelope",
]
ItemStatus = Literal["accepted", "duplicate", "rejected", "suppressed"]


class ItemError(BaseModel):
    code: ReasonCode
    pointer: str = Field(description="JSON pointer into the request body, e.g. /3/properties/price")
    message: str


class ItemResult(BaseModel):
    index: NonNegInt32 = Field(description="Position of the event in the request.")
    status: ItemStatus
    event_id: str = Field(description="The client's event_id, or the one generated for it.")
    errors: list[ItemError] = Field(description="Why it was rejected (empty otherwise).")


class IngestBatchRead(BaseModel):
    accepted: NonNegInt64
    duplicate: NonNegInt64
    rejected: NonNegInt64
    suppressed: NonNegInt64 = Field(
        default=0, description="Events of users suppressed by a GDPR request: dropped, not stored."
    )
    items: list[ItemResult] = Field(description="One per input event, in input order.")
    processed: bool | None = Field(
        default=None,
        description="With ?wait=processed: whether the events were processed before the "
        "timeout (absent otherwise).",
    )


class IngestEventRead(BaseModel):
    status: Literal["accepted", "duplicate", "suppressed"]
    event_id: str
    processed: bool | None = Field(
        default=None, description="With ?wait=processed: processed before the timeout."
    )


class SegmentRead(IngestBatchRead):
    success: bool = Field(description="Segment's acknowledgement: the request was processed.")


class EventCountRead(BaseModel):
    accepted: NonNegInt64
    duplicate: NonNegInt64
    rejected: NonNegInt64
    suppressed: NonNegInt64 = Field(default=0, description="Dropped: the user is suppressed.")


class EventTypeCounts(EventCountRead):
    event: str = Field(description="Event name; '(unknown)' for rejected unknown names.")


class HourCounts(EventCountRead):
    hour: UtcTime = Field(description="Start of the hour of arrival (UTC).")


class ProcessingLag(BaseModel):
    total: NonNegInt64 = Field(description="Events in the log not yet in the analytics store.")
    partitions: dict[str, NonNegInt64]


class IngestStatsRead(BaseModel):
    project_id: str
    pipeline_id: str | None
    since: UtcTime
    totals: EventCountRead
    by_event: list[EventTypeCounts]
    by_hour: list[HourCounts]
    dead_letters: dict[str, NonNegInt64] = Field(description="Dead letters per status.")
    processing_lag: ProcessingLag | None = Field(
        description="Null when the event log or the analytics store is not running here, "
        "and for project-scoped credentials (the log is shared by every tenant)."
    )


# --- request bodies (documentation only: bodies are read raw and checked by validation) ---

_ID: dict[str, Any] = {
    "anyOf": [{"type": "string", "maxLength": 256}, {"type": "integer"}, {"type": "null"}]
}
ENVELOPE_SCHEMA: dict[str, Any] = {
    "title": "Event",
    "type": "object",
    "description": "One event. Only `event` is required; `properties` are checked against "
    "the pipeline's deployed schema.",
    "required": ["event"],
    "additionalProperties": False,
    "properties": {
        "event_id": {
            "anyOf": [{"type": "string", "minLength": 1, "maxLength": 128}, {"type": "integer"}],
            "description": "Dedup key (per project); generated when absent.",
        },
        "event": {"type": "string", "minLength": 1, "maxLength": 128},
        "timestamp": {
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
            "description": "ISO-8601 with any offset (naive: UTC), or epoch seconds or "
            "milliseconds (above 1e11). Default: time of arrival.",
        },
        "user_id": _ID,
        "cart_id": _ID,
        "session_id": _ID,
        "properties": {"type": "object"},
    },
}
BATCH_SCHEMA: dict[str, Any] = {
    "title": "EventBatch",
    "description": 'A JSON array of events (see Event), or {"events": [...]}. Each item is '
    "validated on its own: invalid items are rejected (and dead-lettered), the rest accepted.",
    "anyOf": [
        {"type": "array", "items": {}},
        {
            "type": "object",
            "required": ["events"],
            "additionalProperties": False,
            "properties": {"events": {"type": "array", "items": {}}},
        },
    ],
}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring a raw JSON request body."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
