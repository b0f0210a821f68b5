"""How long reconciliation takes to read one day of the event log, against reading the
whole log (what a scan from offset 0 would cost), on the embedded SQLite log.

    PYTHONPATH=src python bench/reconciliation_logscan.py [days] [events_per_day]

Prints the median of 3 runs of each; results in docs/reconciliation.md."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dataintel.reconciliation.logscan import micros, read_day
from dataintel.storage.eventlog.port import AppendItem
from dataintel.storage.eventlog.sqlite import SqliteEventLog
from dataintel.storage.records import StoredEvent, encode

START = datetime(2026, 1, 1, tzinfo=UTC)


def item(i: int, received: datetime) -> AppendItem:
    event: StoredEvent = {
        "project_id": "shop" if i % 2 else "other",
        "pipeline_id": "web",
        "pipeline_version": 1,
        "event_id": f"e{i}",
        "event": "view",
        "ts": micros(received),
        "received_at": micros(received),
        "user_id": f"u{i % 5000}",
        "cart_id": None,
        "session_id": None,
        "properties": {"product_id": f"p{i % 300}", "price": 9.5},
    }
    return AppendItem(key=f"u{i % 5000}", value=encode(event))


async def main(days: int, per_day: int) -> None:
    with tempfile.TemporaryDirectory() as where:
        log = SqliteEventLog(Path(where) / "log.db", partitions=4)
        await log.start()
        step = timedelta(days=1) / per_day
        for day in range(days):
            for start in range(0, per_day, 10_000):
                at = START + timedelta(days=day)
                await log.append([item(i, at + i * step) for i in range(start, start + 10_000)])
        middle = START + timedelta(days=days // 2)
        one_day, whole = [], []
        for _ in range(3):
            began = time.perf_counter()
            found = await read_day(log, "shop", middle, middle + timedelta(days=1))
            one_day.append(time.perf_counter() - began)
            began = time.perf_counter()
            everything = await read_day(log, "shop", START, START + timedelta(days=days))
            whole.append(time.perf_counter() - began)
        await log.close()
    print(
        f"log {days * per_day} entries ({days} days x {per_day}); one day: "
        f"{len(found.entries)} kept, {found.read} read, {statistics.median(one_day):.2f} s; "
        f"whole log: {everything.read} read, {statistics.median(whole):.2f} s"
    )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]] or [10, 20_000]
    asyncio.run(main(*args))
