"""Helpers of the data lake tests: stored events as log entries, and what the lake holds."""

from __future__ import annotations

from collections import Counter

from dataintel.export.datalake.committed import committed_files, read_events
from dataintel.storage.blob.port import BlobStore
from dataintel.storage.eventlog.port import AppendItem, LogEntry
from dataintel.storage.records import StoredEvent, encode

HOUR_US = 3600 * 1_000_000
T0 = 1_796_630_400_000_000  # 2026-12-07T08:00:00Z in µs


def stored(i: int, project_id: str = "shop", hour: int = 0) -> StoredEvent:
    return {
        "project_id": project_id,
        "pipeline_id": "web",
        "pipeline_version": 1,
        "event_id": f"e{i}",
        "event": "cart_add",
        "ts": T0 + hour * HOUR_US + i,
        "received_at": T0 + hour * HOUR_US + i,
        "user_id": f"u{i % 5}",
        "cart_id": f"c{i % 7}",
        "session_id": None,
        "properties": {"sku": f"s{i}", "price": i},
    }


def entries(partition: int, offsets: range, project_id: str = "shop") -> list[LogEntry]:
    return [LogEntry(partition, o, encode(stored(o, project_id, hour=o % 3))) for o in offsets]


def items(n: int, projects: tuple[str, ...] = ("shop", "other")) -> list[AppendItem]:
    out = []
    for i in range(n):
        event = stored(i, projects[i % len(projects)], hour=i % 3)
        out.append(AppendItem(key=str(event["user_id"]), value=encode(event)))
    return out


def lake_ids(store: BlobStore, project_id: str) -> Counter[str]:
    """How many times each event id is in the project's committed files."""
    return Counter(read_events(store, project_id).column("event_id").to_pylist())


def committed_rows(store: BlobStore) -> int:
    return sum(f.rows for f in committed_files(store))
