"""Finding a subject in the analytics store: the user's events, the carts and sessions that
appear in them (and their events without the user id), and the values of other entity keys
(e.g. a product id) whose features counted those events and must be recomputed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from dataintel.model.subject import Subject
from dataintel.storage.analytics.port import AnalyticsStore, EventQuery

ENVELOPE_KEYS = frozenset({"user_id", "cart_id", "session_id"})


@dataclass(slots=True)
class Found:
    subject: Subject
    events: list[dict[str, Any]] = field(default_factory=list)
    # entity key (a property) → ids whose features counted the subject's events
    recompute: dict[str, list[str]] = field(default_factory=dict)


def _rows(analytics: AnalyticsStore, query: EventQuery) -> Iterator[dict[str, Any]]:
    for batch in analytics.scan_events(query):
        yield from batch.to_pylist()


def find(
    analytics: AnalyticsStore, project_id: str, user_id: str, property_keys: Iterable[str] = ()
) -> Found:
    base = EventQuery(project_id=project_id, batch_rows=5_000)
    events = {
        r["event_id"]: r for r in _rows(analytics, dataclasses.replace(base, user_id=user_id))
    }
    carts = {str(r["cart_id"]) for r in events.values() if r.get("cart_id")}
    sessions = {str(r["session_id"]) for r in events.values() if r.get("session_id")}
    for cart in sorted(carts):
        events.update(
            (r["event_id"], r) for r in _rows(analytics, dataclasses.replace(base, cart_id=cart))
        )
    for session in sorted(sessions):
        events.update(
            (r["event_id"], r)
            for r in _rows(analytics, dataclasses.replace(base, session_id=session))
        )
    subject = Subject(project_id, user_id, frozenset(carts), frozenset(sessions))
    ordered = sorted(events.values(), key=lambda r: (r["ts"], r["event_id"]))
    return Found(subject, ordered, _affected(ordered, set(property_keys) - ENVELOPE_KEYS))


def _affected(events: list[dict[str, Any]], keys: set[str]) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {key: set() for key in sorted(keys)}
    for event in events:
        properties = _properties(event.get("properties"))
        for key in keys:
            value = properties.get(key)
            if value is not None and not isinstance(value, dict | list):
                found[key].add(value if isinstance(value, str) else orjson.dumps(value).decode())
    return {key: sorted(ids) for key, ids in found.items() if ids}


def _properties(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        parsed = orjson.loads(value)
        return parsed if isinstance(parsed, dict) else {}
    return value if isinstance(value, dict) else {}


def portable(event: dict[str, Any]) -> dict[str, Any]:
    """A stored event as JSON values (times as ISO-8601, properties as an object)."""
    out = dict(event)
    for key, value in event.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
    out["properties"] = _properties(event.get("properties"))
    return out
