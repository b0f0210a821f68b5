"""One day's entries of the event log, read without scanning the whole log.

A partition's entries are appended in arrival order, and ``received_at`` is stamped by
ingest just before the append, so within a partition it grows with the offset up to the
time a request spends between the two (well under ``SLACK``). A day's entries are therefore
one offset range per partition: its start is found by a binary search on offsets (one
single-entry read per step, O(log n)) for the first entry received at or after ``start -
SLACK``, and the range is read forward until an entry received at or after ``end + SLACK``.
Entries are then kept by their exact ``received_at``. The cost of a day is the day's entries
of every project plus O(log n) reads per partition, whatever the log's length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dataintel.storage.analytics.decode import decode_entries
from dataintel.storage.eventlog.port import EventLog, LogEntry

SLACK = timedelta(minutes=5)  # how far arrival order may lag offset order in a partition
_SLACK_US = SLACK // timedelta(microseconds=1)
PAGE = 1_000  # entries read per round trip (the scan reads at most one page past the day)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DayEntries:
    """A project's log entries received in [start, end), as raw entries and decoded."""

    entries: list[LogEntry]
    table: pa.Table  # EVENT_SCHEMA (storage/analytics/decode.py), in the order of ``entries``
    read: int  # entries read from the log (every project's), the cost of the scan


def micros(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


def _received(entry: LogEntry) -> int:
    value = orjson.loads(entry.value)
    return int(value["received_at"])


async def _first_at_or_after(log: EventLog, partition: int, end: int, at_us: int) -> int:
    """The lowest offset whose entry was received at or after ``at_us`` (``end`` if none)."""
    lo, hi = 0, end
    while lo < hi:
        mid = (lo + hi) // 2
        found = await log.read(partition, mid, 1)
        if not found:  # nothing readable from mid on (erased or unreadable entries)
            hi = mid
        elif _received(found[0]) < at_us:
            lo = found[0].offset + 1
        else:
            hi = mid
    return lo


async def _partition_day(
    log: EventLog, partition: int, end: int, start_us: int, stop_us: int
) -> Iterator[list[LogEntry]]:
    offset = await _first_at_or_after(log, partition, end, start_us - _SLACK_US)
    pages: list[list[LogEntry]] = []
    horizon = stop_us + _SLACK_US
    while offset < end:
        page = await log.read(partition, offset, PAGE)
        if not page:
            break
        pages.append(page)
        if _received(page[-1]) >= horizon:
            break
        offset = page[-1].offset + 1
    return iter(pages)


async def read_day(log: EventLog, project_id: str, start: datetime, end: datetime) -> DayEntries:
    """The project's entries received in [start, end) (UTC), every partition."""
    start_us, stop_us = micros(start), micros(end)
    ends = await log.end_offsets()
    kept: list[LogEntry] = []
    tables: list[pa.Table] = []
    read = 0
    for partition in sorted(ends):
        for page in await _partition_day(log, partition, ends[partition], start_us, stop_us):
            read += len(page)
            table = decode_entries(page)
            received = pc.cast(table.column("received_at"), pa.int64())
            mine = pc.and_(
                pc.equal(table.column("project_id"), project_id),
                pc.and_(pc.greater_equal(received, start_us), pc.less(received, stop_us)),
            )
            indices = pc.indices_nonzero(mine).to_pylist()
            if indices:
                kept.extend(page[i] for i in indices)
                tables.append(table.take(indices))
    table = pa.concat_tables(tables) if tables else decode_entries([])
    return DayEntries(kept, table, read)
