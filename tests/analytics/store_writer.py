"""Events written straight into the analytics store (the processor's own sink call)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.eventlog.port import LogEntry
from dataintel.storage.records import StoredEvent, encode

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ids = itertools.count()


def micros(when: datetime) -> int:
    return (
        (when - EPOCH).days * 86_400_000_000
        + (when - EPOCH).seconds * 1_000_000
        + (when - EPOCH).microseconds
    )


def write(store: AnalyticsStore, rows: Iterable[dict[str, Any]], project_id: str = "shop") -> int:
    """rows: {event, ts (datetime or µs), user_id?, cart_id?, session_id?, properties?}."""
    entries = []
    offset = _offset(store)
    for i, row in enumerate(rows):
        ts = row["ts"] if isinstance(row["ts"], int) else micros(row["ts"])
        event: StoredEvent = {
            "project_id": row.get("project_id", project_id),
            "pipeline_id": "web",
            "pipeline_version": 1,
            "event_id": f"ev-{next(_ids)}",
            "event": row["event"],
            "ts": ts,
            "received_at": ts,
            "user_id": row.get("user_id"),
            "cart_id": row.get("cart_id"),
            "session_id": row.get("session_id"),
            "properties": row.get("properties", {}),
        }
        entries.append(LogEntry(0, offset + i, encode(event)))
    store.apply(entries)
    return len(entries)


def _offset(store: AnalyticsStore) -> int:
    return store.positions().get(0, 0)


Writer = Callable[[AnalyticsStore, Iterable[dict[str, Any]]], int]
