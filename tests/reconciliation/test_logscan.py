"""A day's entries are read from the log without scanning it whole: a binary search per
partition finds the day's first entry, the scan stops past the day's end (plus the slack of
arrival order), and exactly the project's entries received that day are kept, including
ones appended out of arrival order within the slack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dataintel.reconciliation.logscan import PAGE, SLACK, micros, read_day
from dataintel.storage.eventlog.port import AppendItem
from dataintel.storage.eventlog.sqlite import SqliteEventLog
from dataintel.storage.records import StoredEvent, encode

DAY = datetime(2026, 3, 2, tzinfo=UTC)
PER_DAY = 2_000


def item(project: str, event_id: str, received: datetime) -> AppendItem:
    event: StoredEvent = {
        "project_id": project,
        "pipeline_id": "web",
        "pipeline_version": 1,
        "event_id": event_id,
        "event": "view",
        "ts": micros(received),
        "received_at": micros(received),
        "user_id": f"u{event_id}",
        "cart_id": None,
        "session_id": None,
        "properties": {},
    }
    return AppendItem(key=f"u{event_id}", value=encode(event))


async def scenario(path: Path) -> None:
    log = SqliteEventLog(path, partitions=2)
    await log.start()
    try:
        expected: set[str] = set()
        for day in range(-3, 4):  # a week of arrivals, the day checked in the middle
            start = DAY + timedelta(days=day)
            step = timedelta(days=1) / PER_DAY
            items = []
            for i in range(PER_DAY):
                project = "shop" if i % 4 else "other"
                items.append(item(project, f"{day}-{i}", start + i * step))
                if day == 0 and project == "shop":
                    expected.add(f"{day}-{i}")
            if day == 1:  # late arrivals of the day checked, appended after the next day began
                late = DAY + timedelta(days=1) - SLACK / 2
                items.insert(10, item("shop", "late", late))
                expected.add("late")
            await log.append(items)
        found = await read_day(log, "shop", DAY, DAY + timedelta(days=1))
        ids = found.table.column("event_id").to_pylist()
        assert sorted(ids) == sorted(expected)
        assert [e.offset for e in found.entries] == found.table.column("log_offset").to_pylist()
        total = sum((await log.end_offsets()).values())
        # The day's entries of every project, the slack around it and at most a page per
        # partition past it: a fraction of the week's log.
        assert found.read <= PER_DAY + 2 * PAGE
        assert found.read < total / 2
        nothing = await read_day(log, "shop", DAY + timedelta(days=30), DAY + timedelta(days=31))
        assert nothing.entries == []
        assert nothing.read == 0
    finally:
        await log.close()


def test_a_days_entries_are_found_without_reading_the_whole_log(tmp_path: Path) -> None:
    asyncio.run(scenario(tmp_path / "log.db"))
