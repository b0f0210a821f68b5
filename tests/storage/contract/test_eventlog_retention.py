"""EventLog.expire (retention) on the embedded SQLite log: the project's entries past their
event's cutoff and below the given positions become tombstones (offsets stay, readers skip
them, their bytes leave the file); Kafka leaves expiry to the topic's retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dataintel.model.retention import EventCutoffs
from dataintel.storage.eventlog.dedup import MemoryDedupStore
from dataintel.storage.eventlog.kafka import KafkaEventLog, parse_url
from dataintel.storage.eventlog.port import AppendItem
from dataintel.storage.eventlog.sqlite import SqliteEventLog
from dataintel.storage.records import StoredEvent, encode

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 6, 1, tzinfo=UTC)
MARKER = "expired-log-marker-77c2"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def item(event_id: str, name: str, days_ago: int, project: str = "p1") -> AppendItem:
    when = NOW - timedelta(days=days_ago)
    micros = (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    event: StoredEvent = {
        "project_id": project,
        "pipeline_id": "web",
        "pipeline_version": 1,
        "event_id": event_id,
        "event": name,
        "ts": micros,
        "received_at": micros,
        "user_id": "u1",
        "cart_id": None,
        "session_id": None,
        "properties": {"note": MARKER if days_ago > 30 else "kept"},
    }
    return AppendItem("u1", encode(event), f"{project}/{event_id}")


async def test_expired_entries_become_tombstones_below_the_positions(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    await log.start()
    try:
        items = [
            item("v-old", "view", 40),
            item("v-new", "view", 2),
            item("p-old", "purchase", 40),
            item("other", "view", 40, project="p2"),
            item("v-late", "view", 40),  # past the position: not applied by every sink yet
        ]
        await log.append(items)
        cutoffs = EventCutoffs({"purchase": None}, NOW - timedelta(days=30))
        assert await log.expire("p1", cutoffs, {0: 4}) == 1
        kept = [e.offset for e in await log.read(0, 0, 100)]
        assert kept == [1, 2, 3, 4]  # offset 0 is a tombstone; offsets stay
        assert await log.end_offsets() == {0: 5}
        assert await log.expire("p1", cutoffs, {0: 5}) == 1  # v-late, once applied
        assert await log.expire("p1", cutoffs, {0: 5}) == 0
        assert await log.expire("p1", EventCutoffs(), {0: 5}) == 0
        again = await log.append([item("v-old", "view", 40)])  # its dedup key went too
        assert again.accepted == [True]
    finally:
        await log.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert raw.count(MARKER.encode()) == 3  # p-old, other, and v-old appended again


async def test_kafka_leaves_expiry_to_the_topic() -> None:
    log = KafkaEventLog(parse_url("kafka://127.0.0.1:9/events"), MemoryDedupStore(60))
    assert await log.expire("p1", EventCutoffs({}, NOW), {0: 10}) == 0
