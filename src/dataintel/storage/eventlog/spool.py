"""A durable local spool in front of a remote event log (Kafka), for broker outages.

``append`` tries the log; when the log fails with an outage (its breaker: ``BackendFailed``
or ``BackendUnavailable``) or does not answer within ``append_timeout``, the items are
written to a SQLite file (WAL, ``synchronous=FULL``: durable when ``append`` returns) and
acknowledged as spooled. While the spool holds anything, new items go behind it (order is
kept), and a forwarder sends the oldest items to the log, deleting them once the log has
them. A crash between the log's acknowledgement and the delete sends them again: the log's
dedup keys, and the sinks' (project, event id) check, keep each event stored once.

The spool is bounded (``max_bytes`` of event bytes): when full, ``append`` raises
``SpoolFull`` (503 + Retry-After) instead of accepting what it cannot keep; so when its disk
fills first (SQLite cannot write: nothing is acknowledged). What the log has taken is
forgotten in memory first and deleted from the file after: a spool on a full disk still
drains, and ingest goes straight to the log again. Once nothing waits, the spool's files
are removed and made anew instead: that gives the disk back (a WAL keeps its size until a
checkpoint, and both a checkpoint and a DELETE need room on the disk), so the next outage
starts with an empty disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from dataintel.model.retention import EventCutoffs
from dataintel.model.subject import Subject
from dataintel.storage.breakers import BackendFailed, BackendUnavailable
from dataintel.storage.errors import StorageError
from dataintel.storage.eventlog.port import (
    AppendItem,
    AppendResult,
    EventLog,
    LogConsumer,
    LogEntry,
)

log = structlog.get_logger("dataintel.spool")
OUTAGES = (BackendFailed, BackendUnavailable, TimeoutError)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    dedup_key TEXT,
    subject_project TEXT,
    subject_id TEXT
)
"""


class SpoolFull(StorageError):
    """The spool holds ``max_bytes``: nothing more is accepted until the log is back."""

    def __init__(self, max_bytes: int, disk_error: str | None = None) -> None:
        where = f"its disk is full ({disk_error})" if disk_error else f"{max_bytes} bytes"
        super().__init__(
            f"the event log is unavailable and the local spool is full ({where}); retry shortly"
        )
        self.retry_after = 5


class SpooledEventLog(EventLog):
    """``inner`` with a local spool for its outages; every other call goes to ``inner``."""

    def __init__(
        self,
        inner: EventLog,
        path: Path,
        max_bytes: int,
        append_timeout: float = 2.0,
        batch: int = 1000,
    ) -> None:
        self.inner = inner
        self.path = path
        self.max_bytes = max_bytes
        self.append_timeout = append_timeout
        self.batch = batch
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._events = 0
        self._bytes = 0
        self._forwarded = 0  # the last row id the log has taken (deleted, or to delete)
        self._purged = 0  # the last row id deleted from the file
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def partitions(self) -> int:  # type: ignore[override]
        return self.inner.partitions

    # -- spool state ----------------------------------------------------------------------

    def depth(self) -> tuple[int, int]:
        """(events, bytes) waiting in the spool."""
        return self._events, self._bytes

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        events, size = db.execute(
            "SELECT count(*), coalesce(sum(length(value)), 0) FROM spool"
        ).fetchone()
        self._db, self._events, self._bytes = db, int(events), int(size)

    def _write(self, items: Sequence[AppendItem]) -> None:
        size = sum(len(item.value) for item in items)
        with self._lock:
            if self._bytes + size > self.max_bytes:
                raise SpoolFull(self.max_bytes)
            if self._db is None:  # could not be made anew (_recreate): try again
                try:
                    self._open()
                except sqlite3.Error as exc:
                    raise SpoolFull(self.max_bytes, str(exc)) from exc
            assert self._db is not None
            rows = [
                (
                    item.key,
                    item.value,
                    item.dedup_key,
                    item.subject[0] if item.subject else None,
                    item.subject[1] if item.subject else None,
                )
                for item in items
            ]
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO spool (key, value, dedup_key, subject_project, subject_id) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # the disk is full (SQLITE_FULL)
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise SpoolFull(self.max_bytes, str(exc)) from exc
            self._events += len(items)
            self._bytes += size

    def _oldest(self) -> tuple[int, list[AppendItem], int]:
        """(last id, the oldest items, their bytes)."""
        with self._lock:
            assert self._db is not None
            rows = self._db.execute(
                "SELECT id, key, value, dedup_key, subject_project, subject_id FROM spool "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (self._forwarded, self.batch),
            ).fetchall()
        items = [
            AppendItem(key, value, dedup, (project, sid) if project is not None else None)
            for _, key, value, dedup, project, sid in rows
        ]
        return (rows[-1][0] if rows else 0), items, sum(len(i.value) for i in items)

    def _delete(self, last_id: int, count: int, size: int) -> None:
        """The log has the rows up to ``last_id``: forget them, then delete them."""
        with self._lock:
            self._forwarded = last_id
            self._events -= count
            self._bytes -= size
        self._purge()

    def _purge(self) -> None:
        """Delete the forwarded rows from the file, or, when nothing waits, make the files
        anew. On a full disk with rows still waiting: later (a crash before sends them again
        on start: the log's dedup keys and the sinks keep them once)."""
        with self._lock:
            if self._purged >= self._forwarded:
                return
            if self._events == 0:
                self._recreate()
                return
            assert self._db is not None
            try:
                self._db.execute("DELETE FROM spool WHERE id <= ?", (self._forwarded,))
            except sqlite3.OperationalError as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                log.warning("spool purge failed: retried later", error=str(exc)[:200])
                return
            self._purged = self._forwarded

    def _recreate(self) -> None:
        """Remove the spool's files and open new ones (``_lock`` held, nothing waiting)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._forwarded = self._purged = 0  # the new file numbers its rows from 1
        try:
            self._open()
        except sqlite3.Error as exc:  # the next _write tries again
            log.error("spool files could not be made anew", error=str(exc)[:200])

    # -- the port -------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        self._task = asyncio.create_task(self._forward(), name="spool-forwarder")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._db is not None:
            self._db.close()
            self._db = None
        await self.inner.close()

    async def append(self, items: Sequence[AppendItem]) -> AppendResult:
        if not items:
            return AppendResult([], {})
        if self._events == 0:
            try:
                return await asyncio.wait_for(self.inner.append(items), self.append_timeout)
            except OUTAGES as exc:
                log.warning("event log unavailable: spooling", error=str(exc)[:300])
        await asyncio.to_thread(self._write, items)
        self._wake.set()
        return AppendResult([True] * len(items), {}, spooled=True)

    async def _forward(self) -> None:
        pause = 0.2
        while True:
            if self._events == 0:
                if self._purged < self._forwarded:
                    await asyncio.to_thread(self._purge)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                continue
            last_id, items, size = await asyncio.to_thread(self._oldest)
            try:
                await asyncio.wait_for(self.inner.append(items), max(self.append_timeout, 10.0))
            except Exception as exc:  # noqa: BLE001 - still down: try again later
                log.info("spool forward failed", error=str(exc)[:200], waiting=self._events)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            pause = 0.2
            await asyncio.to_thread(self._delete, last_id, len(items), size)
            log.info("spool forwarded", events=len(items), waiting=self._events)

    async def erase(self, subject: Subject, below: Mapping[int, int]) -> int:
        return await self.inner.erase(subject, below)

    async def expire(self, project_id: str, cutoffs: EventCutoffs, below: Mapping[int, int]) -> int:
        return await self.inner.expire(project_id, cutoffs, below)

    async def read(self, partition: int, start_offset: int, max_records: int) -> list[LogEntry]:
        return await self.inner.read(partition, start_offset, max_records)

    async def end_offsets(self) -> dict[int, int]:
        return await self.inner.end_offsets()

    def consumer(self, group: str) -> LogConsumer:
        return self.inner.consumer(group)

    async def ping(self) -> None:
        await self.inner.ping()

    def __getattr__(self, name: str) -> Any:  # adapter extras (e.g. Kafka's unseal, topic)
        return getattr(self.inner, name)
