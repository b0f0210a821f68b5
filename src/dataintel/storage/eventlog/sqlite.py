"""The embedded EventLog: one SQLite file in WAL mode, ``synchronous=FULL``, group commit.

URL: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``, optional
``?partitions=N`` (default 1, or what the file was created with; it cannot change later).
Partition = CRC-32 of the item's key modulo N; offsets per partition start at 0, gapless.

Writes go through one writer thread with group commit (sqlite_writer.py): a returned
``append`` is durable. Dedup is exact: the key is checked and recorded in the same
transaction as the entry, so a key appended twice (in one batch, in two concurrent requests,
or across restarts) is accepted once within the window; the writer prunes expired keys.

Reads (``read``, consumers, ``end_offsets``) use separate connections in worker threads: WAL
lets them run beside the writer, also from other processes (``dataintel worker``). Consumers
of this process wake on each commit; other processes see new entries within one poll
interval (POLL_INTERVAL_S). A group has one member here: it is assigned every partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs

from dataintel.model.retention import EventCutoffs
from dataintel.model.subject import Subject
from dataintel.storage.eventlog.port import (
    AppendItem,
    AppendResult,
    EventLog,
    LogConsumer,
    LogEntry,
    ResumeFrom,
)
from dataintel.storage.eventlog.sqlite_erase import erase_entries, expire_entries
from dataintel.storage.eventlog.sqlite_writer import (
    Job,
    Writer,
    connect,
    initialise,
    next_offsets,
    partition_for,
)

__all__ = ["SqliteEventLog", "SqliteLogConsumer", "parse_url", "partition_for"]

POLL_INTERVAL_S = 0.025  # how often an idle consumer looks for other processes' appends


def parse_url(url: str) -> tuple[Path, int | None]:
    """``sqlite:///path?partitions=N`` → (path, N or None)."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not an sqlite EventLog URL: {url!r} (sqlite:///path/eventlog.db)")
    rest, _, query = url.removeprefix("sqlite:///").partition("?")
    if not rest or rest == ":memory:":
        raise ValueError("the sqlite EventLog needs a file path (WAL does not work in memory)")
    values = parse_qs(query).get("partitions")
    partitions = int(values[-1]) if values else None
    if partitions is not None and partitions < 1:
        raise ValueError("partitions must be at least 1")
    return Path(rest), partitions


class _Readers:
    """A small pool of read connections, used from worker threads."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = connect(self._path, writer=False)
            with self._lock:
                self._all.append(conn)
        try:
            yield conn
        finally:
            self._idle.put(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
            self._idle = queue.SimpleQueue()


def _read_rows(conn: sqlite3.Connection, partition: int, start: int, limit: int) -> list[LogEntry]:
    rows = conn.execute(
        'SELECT "offset", value FROM log WHERE "partition" = ? AND "offset" >= ? '
        "AND length(value) > 0 "  # not an erased entry (sqlite_erase.TOMBSTONE)
        'ORDER BY "offset" LIMIT ?',
        (partition, start, limit),
    )
    return [LogEntry(partition, offset, value) for offset, value in rows]


class SqliteEventLog(EventLog):
    def __init__(self, path: Path, partitions: int | None = None, window_s: int = 7 * 86400):
        self.path = path
        self.partitions = partitions or 1
        self._requested_partitions = partitions
        self._window_s = window_s
        self._writer: Writer | None = None
        self._readers = _Readers(path)
        self._listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @classmethod
    def from_url(cls, url: str, window_s: int) -> SqliteEventLog:
        path, partitions = parse_url(url)
        return cls(path, partitions, window_s)

    async def start(self) -> None:
        self.partitions = await asyncio.to_thread(initialise, self.path, self._requested_partitions)
        self._writer = Writer(self.path, self.partitions, self._window_s, self._notify)
        self._writer.start()

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()
            await asyncio.to_thread(writer.join)
        self._readers.close()

    def _submit(self, job: Job) -> None:
        if self._writer is None:
            raise RuntimeError("the event log is not started (or was closed)")
        self._writer.submit(job)

    async def append(self, items: Sequence[AppendItem]) -> AppendResult:
        if not items:
            return AppendResult([], {})
        loop = asyncio.get_running_loop()
        job = Job(loop, loop.create_future(), items=items)
        self._submit(job)
        result: AppendResult = await job.future
        return result

    async def commit_offsets(self, group: str, next_offsets: dict[int, int]) -> None:
        loop = asyncio.get_running_loop()
        job = Job(loop, loop.create_future(), offsets=(group, dict(next_offsets)))
        self._submit(job)
        await job.future

    async def erase(self, subject: Subject, below: Mapping[int, int]) -> int:
        return await self._maintain(partial(erase_entries, subject=subject, below=below))

    async def expire(self, project_id: str, cutoffs: EventCutoffs, below: Mapping[int, int]) -> int:
        return await self._maintain(
            partial(expire_entries, project_id=project_id, cutoffs=cutoffs, below=below)
        )

    async def _maintain(self, call: Callable[[sqlite3.Connection], int]) -> int:
        """Run ``call`` on the writer thread (between two group commits)."""
        loop = asyncio.get_running_loop()
        job = Job(loop, loop.create_future(), call=call)
        self._submit(job)
        done: int = await job.future
        return done

    async def read(self, partition: int, start_offset: int, max_records: int) -> list[LogEntry]:
        return await asyncio.to_thread(self._read, partition, start_offset, max_records)

    def _read(self, partition: int, start: int, limit: int) -> list[LogEntry]:
        with self._readers.connection() as conn:
            return _read_rows(conn, partition, start, limit)

    def read_many(self, positions: dict[int, int], max_records: int) -> list[LogEntry]:
        """Blocking: up to ``max_records`` entries from ``positions``, fair across partitions."""
        entries: list[LogEntry] = []
        with self._readers.connection() as conn:
            conn.execute("BEGIN")  # one snapshot for all partitions
            try:
                for partition, start in positions.items():
                    remaining = max_records - len(entries)
                    if remaining <= 0:
                        break
                    entries.extend(_read_rows(conn, partition, start, remaining))
            finally:
                conn.execute("COMMIT")
        return entries

    async def end_offsets(self) -> dict[int, int]:
        return await asyncio.to_thread(self._end_offsets)

    def _end_offsets(self) -> dict[int, int]:
        with self._readers.connection() as conn:
            return dict(enumerate(next_offsets(conn, self.partitions)))

    def committed(self, group: str) -> dict[int, int]:
        """Blocking: the advisory offsets ``group`` committed (tools, lag)."""
        with self._readers.connection() as conn:
            rows = conn.execute(
                'SELECT "partition", next_offset FROM consumer_offsets WHERE "group" = ?',
                (group,),
            )
            return dict(rows.fetchall())

    def consumer(self, group: str) -> LogConsumer:
        return SqliteLogConsumer(self, group)

    async def ping(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            raise RuntimeError("the event log writer is not running")
        await asyncio.to_thread(self._ping)

    def _ping(self) -> None:
        with self._readers.connection() as conn:
            conn.execute("SELECT 1 FROM log_meta LIMIT 1").fetchall()

    # Wake-ups for consumers of this process (other processes poll the file).
    def listen(self, event: asyncio.Event) -> None:
        self._listeners.add((asyncio.get_running_loop(), event))

    def unlisten(self, event: asyncio.Event) -> None:
        self._listeners = {pair for pair in self._listeners if pair[1] is not event}

    def _notify(self) -> None:
        for loop, event in list(self._listeners):
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)


class SqliteLogConsumer(LogConsumer):
    """The only member of its group: every partition is assigned to it."""

    def __init__(self, log: SqliteEventLog, group: str) -> None:
        self._log = log
        self._group = group
        self._positions: dict[int, int] = {}
        self._appended = asyncio.Event()
        self._rotation = 0

    @property
    def assigned(self) -> set[int]:
        return set(self._positions)

    async def start(self, resume: ResumeFrom) -> None:
        partitions = set(range(self._log.partitions))
        wanted = resume(partitions)
        self._positions = {p: max(0, wanted.get(p, 0)) for p in sorted(partitions)}
        self._log.listen(self._appended)

    async def poll(self, max_records: int, timeout_s: float) -> list[LogEntry]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_s)
        while True:
            self._appended.clear()
            entries = await asyncio.to_thread(self._log.read_many, self._order(), max_records)
            if entries:
                for entry in entries:
                    self._positions[entry.partition] = entry.offset + 1
                self._rotation += 1
                return entries
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._appended.wait(), min(remaining, POLL_INTERVAL_S))

    def _order(self) -> dict[int, int]:
        """Positions starting at a rotating partition, so none starves under load."""
        items = list(self._positions.items())
        if not items:
            return {}
        shift = self._rotation % len(items)
        return dict(items[shift:] + items[:shift])

    async def commit(self, next_offsets: dict[int, int]) -> None:
        if next_offsets:
            await self._log.commit_offsets(self._group, next_offsets)

    async def stop(self) -> None:
        self._log.unlisten(self._appended)
