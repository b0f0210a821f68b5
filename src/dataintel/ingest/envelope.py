"""The event envelope: reading request bodies and normalising the envelope's own fields.

An event is a JSON object::

    {"event_id": "...", "event": "cart_add", "timestamp": "2024-05-01T10:00:00+02:00",
     "user_id": "u1", "cart_id": null, "session_id": null, "properties": {...}}

Only ``event`` is required. ``event_id`` is the client's dedup key (generated at reception
when absent, so a dead letter keeps it and a replay can never store the event twice);
``timestamp`` is ISO-8601 with any offset (naive: UTC) or epoch seconds / milliseconds
(a number above 1e11 is milliseconds), stored as UTC microseconds, and defaults to the time
of arrival; ids are strings (numbers are stringified). Everything here is a plain function
over plain values: it runs once per event, so it stays small.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import orjson

from dataintel.errors import BadRequest
from dataintel.model.fields import ENTITY_ID_MAX


class Reason(TypedDict):
    """Why an event was rejected: a typed code and a JSON pointer to the field."""

    code: str
    pointer: str
    message: str


ENVELOPE_FIELDS = frozenset(
    {"event_id", "event", "timestamp", "user_id", "cart_id", "session_id", "properties"}
)
ID_MAX = 128  # event_id
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
MS_THRESHOLD = 1e11  # epoch numbers above this are milliseconds (1e11 s is the year 5138)
MIN_US = (datetime(1, 1, 2, tzinfo=UTC) - EPOCH) // ONE_US
MAX_US = (datetime(9999, 12, 30, tzinfo=UTC) - EPOCH) // ONE_US


def reason(code: str, pointer: str, message: str) -> Reason:
    return {"code": code, "pointer": pointer, "message": message}


def now_us() -> int:
    return time.time_ns() // 1000


def new_event_id() -> str:
    """A time-ordered id (UUIDv7 layout: 48-bit ms timestamp, then random), so generated ids
    land near each other in the dedup index instead of on random pages (measured: ~1.7x the
    embedded log's append rate of uuid4)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value).hex


def us_to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def parse_json(raw: bytes) -> Any:
    """The request body as JSON (orjson); a syntax error or an empty body is a 400."""
    if not raw.strip():
        raise BadRequest("the request body is empty: send a JSON event (or array of events)")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None


def batch_items(body: Any) -> tuple[list[Any], str]:
    """(items, pointer prefix of item 0's parent) of a batch body: a JSON array, or an object
    ``{"events": [...]}`` (and nothing else)."""
    if isinstance(body, list):
        return body, ""
    if isinstance(body, dict) and isinstance(body.get("events"), list) and len(body) == 1:
        return body["events"], "/events"
    raise BadRequest('a batch body is a JSON array of events or {"events": [...]}')


def timestamp_us(value: Any) -> int | None:
    """UTC microseconds of an ISO-8601 string or an epoch number; None when unreadable."""
    kind = type(value)
    if kind is str:
        return _iso_us(value)
    if kind is int or kind is float:
        scaled = value * 1000 if value > MS_THRESHOLD else value * 1_000_000
        if not MIN_US <= scaled <= MAX_US:
            return None
        return int(scaled) if kind is int else round(scaled)
    return None


def _iso_us(text: str) -> int | None:
    if text.endswith(" UTC"):  # e.g. "2019-10-01 00:00:00 UTC" (REES46, BigQuery exports)
        text = text[:-4] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    us: int = (dt - EPOCH) // ONE_US
    return us if MIN_US <= us <= MAX_US else None


def entity_id(value: Any, pointer: str, reasons: list[Reason]) -> str | None:
    """A user/cart/session id: a string, or a number stringified; "" and null are absent."""
    kind = type(value)
    if kind is str:
        if len(value) > ENTITY_ID_MAX:
            reasons.append(
                reason("invalid_envelope", pointer, f"longer than {ENTITY_ID_MAX} characters")
            )
            return None
        return value or None
    if value is None:
        return None
    if kind is int:
        return str(value)
    if kind is float and value.is_integer():
        return str(int(value))
    reasons.append(reason("wrong_type", pointer, "must be a string (or an integer)"))
    return None


def event_id_of(item: dict[str, Any], reasons: list[Reason]) -> str:
    """The client's event_id, or a fresh one (also when the given one is invalid, so the
    dead letter still has an id; the reason is recorded)."""
    value = item.get("event_id")
    if isinstance(value, str) and 0 < len(value) <= ID_MAX:
        return value
    if type(value) is int:
        return str(value)
    if value is not None:
        reasons.append(
            reason(
                "invalid_envelope",
                "/event_id",
                f"must be a non-empty string of at most {ID_MAX} characters",
            )
        )
    return new_event_id()
