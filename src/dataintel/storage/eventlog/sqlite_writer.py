"""The write side of the SQLite EventLog: schema, connections and the group-commit writer.

One writer thread owns the only write connection. Callers queue a job (items + an asyncio
future) and await the future; the writer takes everything queued (up to a cap), runs ONE
transaction for all of it (dedup check and record, the inserts), commits (one WAL fsync with
``synchronous=FULL`` for many concurrent requests) and then resolves the futures. A resolved
future is durable: after a kill -9 or a power cut the entries are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from dataintel.storage.eventlog.port import AppendItem, AppendResult

log = structlog.get_logger("dataintel.eventlog.sqlite")

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    "partition" INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY ("partition", "offset")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedup (
    dedup_key TEXT PRIMARY KEY,
    appended_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_by_time ON dedup (appended_at);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    "group" TEXT NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY ("group", "partition")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

MAX_GROUP_ITEMS = 50_000  # most items one group commit writes
PRUNE_EVERY_S = 60.0  # how often the writer deletes expired dedup keys
PRUNE_CHUNK = 5_000  # dedup rows deleted per statement (keeps write pauses short)


def partition_for(key: str, partitions: int) -> int:
    """The partition of ``key``: a stable hash (CRC-32), the same in every process."""
    return zlib.crc32(key.encode()) % partitions if partitions > 1 else 0


def connect(path: Path, *, writer: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    if writer:
        conn.execute("PRAGMA journal_mode = WAL")
        # Checkpoint every ~40 MB of WAL (not 4 MB): random dedup-key inserts dirty many
        # pages, and a larger WAL lets one checkpoint write each page once for many commits.
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        conn.execute("PRAGMA journal_size_limit = 134217728")
        conn.execute("PRAGMA cache_size = -131072")  # 128 MiB: the hot part of the dedup index
        conn.execute("PRAGMA secure_delete = ON")  # freed bytes are zeroed (GDPR erasure)
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def initialise(path: Path, wanted: int | None) -> int:
    """Create the file and schema; return the partition count (fixed once chosen)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path, writer=True)
    try:
        conn.executescript(SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT value FROM log_meta WHERE key = 'partitions'").fetchone()
        stored = int(row[0]) if row else None
        if stored is None:
            stored = wanted or 1
            conn.execute("INSERT INTO log_meta VALUES ('partitions', ?)", (str(stored),))
        conn.execute("COMMIT")
    finally:
        conn.close()
    if wanted is not None and wanted != stored:
        raise ValueError(
            f"{path} was created with partitions={stored}; it cannot change to {wanted} "
            "(keys would move to other partitions). Use a new file or drop ?partitions."
        )
    return stored


def next_offsets(conn: sqlite3.Connection, partitions: int) -> list[int]:
    """Per partition, the next offset (in the write transaction it is never stale)."""
    return [
        conn.execute(
            'SELECT COALESCE(MAX("offset") + 1, 0) FROM log WHERE "partition" = ?', (p,)
        ).fetchone()[0]
        for p in range(partitions)
    ]


def _existing_keys(conn: sqlite3.Connection, keys: set[str], cutoff_ms: int) -> set[str]:
    """Which of ``keys`` were appended at or after ``cutoff_ms`` (within the window)."""
    found: set[str] = set()
    pending = sorted(keys)
    chunk = max(1, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 1)
    for start in range(0, len(pending), chunk):
        part = pending[start : start + chunk]
        marks = ",".join("?" * len(part))
        query = f"SELECT dedup_key FROM dedup WHERE dedup_key IN ({marks}) AND appended_at >= ?"  # noqa: S608 - placeholders only
        found.update(row[0] for row in conn.execute(query, (*part, cutoff_ms)))
    return found


@dataclass(slots=True)
class Job:
    """One request to the writer: an append, or a consumer's offset commit."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    items: Sequence[AppendItem] = ()
    offsets: tuple[str, dict[int, int]] | None = None
    call: Callable[[sqlite3.Connection], Any] | None = None  # maintenance (GDPR erasure)


def _settle(job: Job, result: Any = None, error: BaseException | None = None) -> None:
    def settle() -> None:
        if job.future.done():
            return  # the caller was cancelled; the write stands
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the caller's loop is closed
        job.loop.call_soon_threadsafe(settle)


class Writer(threading.Thread):
    """Owns the write connection; turns the queued jobs into one transaction per round."""

    def __init__(
        self, path: Path, partitions: int, window_s: int, on_commit: Callable[[], None]
    ) -> None:
        super().__init__(name="eventlog-writer", daemon=True)
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._path = path
        self._partitions = partitions
        self._window_ms = window_s * 1000
        self._on_commit = on_commit
        self._next_prune = 0.0

    def submit(self, job: Job) -> None:
        if not self.is_alive():
            raise RuntimeError("the event log writer is not running")
        self.jobs.put(job)

    def stop(self) -> None:
        """Finish what is queued, then exit (call ``join`` to wait)."""
        self.jobs.put(None)

    def run(self) -> None:
        error: BaseException = RuntimeError("the event log writer stopped")
        try:
            conn = connect(self._path, writer=True)
        except BaseException as exc:
            self._fail_queued(exc)
            raise
        try:
            stopping = False
            while not stopping:
                jobs, stopping = self._take()
                if jobs:
                    self._apply(conn, jobs)
                if time.monotonic() >= self._next_prune:
                    self._prune(conn)
        except BaseException as exc:
            error = exc
            raise
        finally:
            conn.close()
            self._fail_queued(error)

    def _fail_queued(self, error: BaseException) -> None:
        """Jobs still queued when the writer ends get ``error`` (they were not written)."""
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                _settle(job, error=error)

    def _take(self) -> tuple[list[Job], bool]:
        """Block for one job (or the prune timer), then drain what is queued, up to the cap."""
        try:
            first = self.jobs.get(timeout=max(0.0, self._next_prune - time.monotonic()))
        except queue.Empty:
            return [], False
        if first is None:
            return [], True
        jobs, count = [first], len(first.items)
        while count < MAX_GROUP_ITEMS:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            count += len(job.items)
        return jobs, False

    def _apply(self, conn: sqlite3.Connection, jobs: list[Job]) -> None:
        calls = [job for job in jobs if job.call is not None]
        if calls:
            jobs = [job for job in jobs if job.call is None]
            for job in calls:
                self._call(conn, job)
            if not jobs:
                return
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = self._append(conn, [job for job in jobs if job.offsets is None])
            for job in jobs:
                if job.offsets is not None:
                    group, offsets = job.offsets
                    conn.executemany(
                        "INSERT OR REPLACE INTO consumer_offsets VALUES (?, ?, ?)",
                        [(group, p, o) for p, o in offsets.items()],
                    )
            conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - every caller hears of it; the writer goes on
            if conn.in_transaction:
                conn.rollback()
            for job in jobs:
                _settle(job, error=exc)
            return
        for job in jobs:
            _settle(job, results.get(id(job)))
        self._on_commit()

    @staticmethod
    def _call(conn: sqlite3.Connection, job: Job) -> None:
        assert job.call is not None
        try:
            result = job.call(conn)
        except Exception as exc:  # noqa: BLE001 - the caller hears of it; the writer goes on
            if conn.in_transaction:
                conn.rollback()
            _settle(job, error=exc)
            return
        _settle(job, result)

    def _append(self, conn: sqlite3.Connection, jobs: list[Job]) -> dict[int, AppendResult]:
        now_ms = int(time.time() * 1000)
        keys = {i.dedup_key for job in jobs for i in job.items if i.dedup_key is not None}
        seen = _existing_keys(conn, keys, now_ms - self._window_ms)
        offsets = next_offsets(conn, self._partitions)
        rows: list[tuple[int, int, bytes]] = []
        dedup_rows: list[tuple[str, int]] = []
        results: dict[int, AppendResult] = {}
        for job in jobs:
            accepted: list[bool] = []
            positions: dict[int, int] = {}
            for item in job.items:
                key = item.dedup_key
                if key is not None:
                    if key in seen:
                        accepted.append(False)
                        continue
                    seen.add(key)
                    dedup_rows.append((key, now_ms))
                partition = partition_for(item.key, self._partitions)
                offset = offsets[partition]
                offsets[partition] = offset + 1
                rows.append((partition, offset, item.value))
                positions[partition] = offset
                accepted.append(True)
            results[id(job)] = AppendResult(accepted, positions)
        conn.executemany("INSERT INTO log VALUES (?, ?, ?)", rows)
        dedup_rows.sort()  # key order: neighbouring keys share index pages
        conn.executemany("INSERT OR REPLACE INTO dedup VALUES (?, ?)", dedup_rows)
        return results

    def _prune(self, conn: sqlite3.Connection) -> None:
        """Delete dedup keys older than the window, a chunk per transaction."""
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        cutoff = int(time.time() * 1000) - self._window_ms
        try:
            while self.jobs.empty():
                deleted = conn.execute(
                    "DELETE FROM dedup WHERE dedup_key IN "
                    "(SELECT dedup_key FROM dedup WHERE appended_at < ? LIMIT ?)",
                    (cutoff, PRUNE_CHUNK),
                ).rowcount
                if deleted < PRUNE_CHUNK:
                    return
            self._next_prune = 0.0  # requests are waiting: finish pruning after them
        except sqlite3.Error as exc:  # e.g. busy: try again next round
            log.warning("dedup prune failed", error=str(exc))
