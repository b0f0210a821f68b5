"""The stored form of one event: what ingest appends to the EventLog and sinks decode.

Times are integers: UTC microseconds since the epoch. Serialised with orjson.
"""

from __future__ import annotations

from typing import Any, TypedDict

import orjson


class StoredEvent(TypedDict):
    project_id: str
    pipeline_id: str
    pipeline_version: int
    event_id: str
    event: str
    ts: int  # event time, UTC µs
    received_at: int  # server time of acceptance, UTC µs
    user_id: str | None
    cart_id: str | None
    session_id: str | None
    properties: dict[str, Any]


def encode(event: StoredEvent) -> bytes:
    return orjson.dumps(event)


def decode(raw: bytes) -> StoredEvent:
    value: StoredEvent = orjson.loads(raw)
    return value


def dedup_key(project_id: str, event_id: str) -> str:
    return f"{project_id}/{event_id}"
