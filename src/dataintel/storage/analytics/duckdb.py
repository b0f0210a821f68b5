"""AnalyticsStore on DuckDB (the embedded default): ``duckdb:///path/analytics.duckdb``.

Exactly once: ``apply`` runs in ONE transaction that filters the batch by the stored log
positions, keeps the first entry per (project_id, event_id) by log order, inserts with
``ON CONFLICT DO NOTHING`` against the primary key (project_id, event_id) and upserts the
new positions. A crash before COMMIT leaves nothing; after it, a replay is skipped.

Threads: one connection; writes hold a lock, every read gets its own cursor (DuckDB MVCC).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from dataintel.model.retention import EventCutoffs
from dataintel.model.subject import Subject
from dataintel.storage.analytics import queries
from dataintel.storage.analytics.decode import decode_entries
from dataintel.storage.analytics.port import (
    AnalyticsStore,
    ApplyResult,
    BatchRun,
    EventCount,
    EventQuery,
    batch_table,
)
from dataintel.storage.errors import InvalidQuery
from dataintel.storage.eventlog.port import LogEntry

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    project_id VARCHAR NOT NULL,
    pipeline_id VARCHAR NOT NULL,
    pipeline_version BIGINT NOT NULL,
    event_id VARCHAR NOT NULL,
    event VARCHAR NOT NULL,
    ts TIMESTAMP NOT NULL,
    received_at TIMESTAMP NOT NULL,
    user_id VARCHAR,
    cart_id VARCHAR,
    session_id VARCHAR,
    properties JSON NOT NULL,
    log_partition BIGINT NOT NULL,
    log_offset BIGINT NOT NULL,
    PRIMARY KEY (project_id, event_id)
);
CREATE TABLE IF NOT EXISTS log_positions (
    log_partition BIGINT PRIMARY KEY,
    next_offset BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS store_meta (key VARCHAR PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS batch_feature_values (
    project_id VARCHAR NOT NULL,
    feature VARCHAR NOT NULL,
    version BIGINT NOT NULL,
    computed_at TIMESTAMP NOT NULL,
    entity_key VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    PRIMARY KEY (project_id, feature, version, computed_at, entity)
);
"""
_TABLES = ("events", "log_positions", "store_meta", "batch_feature_values")
_ERASE = """
DELETE FROM events WHERE project_id = $1
AND (user_id = $2 OR list_contains($3::VARCHAR[], cart_id)
     OR list_contains($4::VARCHAR[], session_id))
"""
_ERASE_BATCH = """
DELETE FROM batch_feature_values WHERE project_id = $1
AND ((entity_key = 'user_id' AND entity = $2)
     OR (entity_key = 'cart_id' AND list_contains($3::VARCHAR[], entity))
     OR (entity_key = 'session_id' AND list_contains($4::VARCHAR[], entity)))
"""
_COUNT_ERASURE = """
INSERT INTO store_meta VALUES ('erasures', 1)
ON CONFLICT (key) DO UPDATE SET value = store_meta.value + 1 RETURNING value
"""

# New rows of the registered batch ``_batch`` (EVENT_COLUMNS): at or past the stored position
# of their partition, first per event by log order; the primary key drops events already stored.
_INSERT = """
INSERT INTO events BY NAME
SELECT b.* FROM _batch b
LEFT JOIN log_positions p ON p.log_partition = b.log_partition
WHERE b.log_offset >= coalesce(p.next_offset, 0)
QUALIFY row_number() OVER (
    PARTITION BY b.project_id, b.event_id ORDER BY b.log_partition, b.log_offset) = 1
ON CONFLICT DO NOTHING
"""
# Reconciliation's repair: the batch's events the store lacks, whatever the positions.
_RESTORE = """
INSERT INTO events BY NAME
SELECT b.* FROM _batch b
QUALIFY row_number() OVER (
    PARTITION BY b.project_id, b.event_id ORDER BY b.log_partition, b.log_offset) = 1
ON CONFLICT DO NOTHING
"""
_ADVANCE = """
INSERT INTO log_positions
SELECT log_partition, max(log_offset) + 1 FROM _batch GROUP BY log_partition
ON CONFLICT (log_partition) DO UPDATE
SET next_offset = greatest(log_positions.next_offset, excluded.next_offset)
RETURNING log_partition, next_offset
"""
_NAIVE = pa.timestamp("us")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCAN_PAGE_ROWS = 100_000


class DuckDBAnalytics(AnalyticsStore):
    dialect = "duckdb"
    positions_in_memory = True

    def __init__(self, path: str, memory_limit: str | None = None) -> None:
        """``memory_limit`` (e.g. ``512MB``): DuckDB's buffer pool, caches included; larger
        sorts and joins spill to ``<path>.tmp`` (default: DuckDB's, 80 % of the RAM)."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # No file or network access from SQL: sql() runs queries written by callers.
        config: dict[str, str | bool | int | float | list[str]] = {"enable_external_access": False}
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        self._path, self._config = path, config
        try:
            self._db = self._connect(path)
        except (duckdb.ParserException, duckdb.InvalidInputException) as exc:
            raise ValueError(f"duckdb:// memory_limit={memory_limit!r}: {exc}") from exc
        self._lock = threading.Lock()
        self._closed = False
        with self._lock:
            text, params = queries.POSITIONS.duckdb()
            rows = self._db.execute(text, params).fetchall()
            found = self._db.execute("SELECT value FROM store_meta WHERE key = 'erasures'")
            self._erasures = _count(found.fetchone())
        # This connection is the file's only writer (DuckDB locks a file to one read-write
        # process) and apply() the only code that moves positions, so a copy kept here is
        # exact: positions() answers without a query (the analytics cache reads it per hit).
        self._positions = {int(p): int(n) for p, n in rows}

    def apply(self, entries: Sequence[LogEntry]) -> ApplyResult:
        if not entries:
            return ApplyResult()
        decoded = decode_entries(entries)
        batch = _naive_times(decoded)
        with self._lock:
            db = self._db
            db.register("_batch", batch)
            try:
                db.execute("BEGIN TRANSACTION")
                try:
                    inserted = _count(db.execute(_INSERT).fetchone())
                    positions = dict(db.execute(_ADVANCE).fetchall())
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.unregister("_batch")
            self._positions = {**self._positions, **positions}
        return ApplyResult(inserted, len(entries) - inserted, positions, decoded)

    def restore(self, entries: Sequence[LogEntry]) -> int:
        if not entries:
            return 0
        batch = _naive_times(decode_entries(entries))
        with self._lock:
            db = self._db
            db.register("_batch", batch)
            try:
                db.execute("BEGIN TRANSACTION")
                try:
                    inserted = _count(db.execute(_RESTORE).fetchone())
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.unregister("_batch")
        return inserted

    def write_batch_values(self, run: BatchRun) -> None:
        rows = queries.naive_utc(batch_table(run))
        with self._lock:
            db = self._db
            db.register("_run", rows)
            try:
                db.execute("BEGIN TRANSACTION")
                try:
                    db.execute(
                        "DELETE FROM batch_feature_values WHERE project_id = ? AND feature = ? "
                        "AND version = ? AND computed_at = ?",
                        [run.project_id, run.feature, run.version, _naive_us(run.computed_at)],
                    )
                    db.execute("INSERT INTO batch_feature_values SELECT * FROM _run")
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.unregister("_run")

    def _connect(self, path: str) -> duckdb.DuckDBPyConnection:
        db = duckdb.connect(path, config=self._config)
        db.execute("SET TimeZone = 'UTC'")
        db.execute(_SCHEMA)
        return db

    def erase(self, subject: Subject) -> int:
        params = [
            subject.project_id,
            subject.user_id,
            sorted(subject.cart_ids),
            sorted(subject.session_ids),
        ]
        return self._delete(_ERASE, params, always=True, also=_ERASE_BATCH)

    def delete_events_before(self, project_id: str, cutoffs: EventCutoffs) -> int:
        params: list[object] = [project_id]

        def bind(value: str | datetime) -> str:
            params.append(_naive(value) if isinstance(value, datetime) else value)
            return f"${len(params)}"

        expired = cutoffs.condition("event", "ts", bind)
        if expired is None:
            return 0
        query = f"DELETE FROM events WHERE project_id = $1 AND ({expired})"  # noqa: S608 - $n only
        return self._delete(query, params, always=False)

    def _delete(
        self, query: str, params: Sequence[object], always: bool, also: str | None = None
    ) -> int:
        """Run one DELETE (and ``also``, with the same parameters, in the same transaction),
        count an erasure (when ``always`` or a row went), rewrite."""
        with self._lock:
            db = self._db
            db.execute("BEGIN TRANSACTION")
            try:
                deleted = _count(db.execute(query, params).fetchone())
                if also is not None:
                    db.execute(also, params)
                if always or deleted:
                    self._erasures = _count(db.execute(_COUNT_ERASURE).fetchone())
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if always or deleted:
                self._rewrite()
        return deleted

    def erasures(self) -> int:
        return self._erasures

    def _rewrite(self) -> None:
        """Copy the tables into a fresh file and swap it in: DuckDB keeps a deleted row's
        values in its blocks (until they are reused), so erasure rewrites the file. Called
        with ``_lock`` held; a query running on an older cursor fails and is retried."""
        if self._path == ":memory:":
            return
        fresh_path = f"{self._path}.rewrite"
        for leftover in (fresh_path, f"{fresh_path}.wal"):
            Path(leftover).unlink(missing_ok=True)
        fresh = self._connect(fresh_path)
        try:
            for table in _TABLES:
                query = f"SELECT * FROM {table}"  # noqa: S608 - our own table names
                reader = self._db.cursor().sql(query).to_arrow_reader(SCAN_PAGE_ROWS)
                fresh.register("_copy", reader)
                fresh.execute(f"INSERT INTO {table} SELECT * FROM _copy")  # noqa: S608
                fresh.unregister("_copy")
            fresh.execute("CHECKPOINT")
        finally:
            fresh.close()
        self._db.close()
        os.replace(fresh_path, self._path)
        Path(f"{self._path}.wal").unlink(missing_ok=True)
        self._db = self._connect(self._path)

    def positions(self) -> dict[int, int]:
        return dict(self._positions)  # replaced, never mutated: a consistent copy

    def scan_events(self, query: EventQuery) -> Iterator[pa.RecordBatch]:
        if query.batch_rows < 1:
            raise InvalidQuery("batch_rows must be positive")
        yield from queries.rebatch(self._scan_pages(query), query.batch_rows)

    def _scan_pages(self, query: EventQuery) -> Iterator[pa.RecordBatch]:
        """The ordered scan as successive keyset pages of ``SCAN_PAGE_ROWS``: one ORDER BY
        over the whole range would make DuckDB sort all of it in memory before the first
        row; a LIMIT makes each query a top-N of one page (memory bounded by a page)."""
        after = query.after
        while True:
            text, params = queries.scan_events(replace(query, after=after)).duckdb()
            with self._cursor() as cur:
                page = cur.sql(f"{text} LIMIT {SCAN_PAGE_ROWS}", params=params).to_arrow_table()
            yield from page.to_batches()
            if page.num_rows < SCAN_PAGE_ROWS:
                return
            last = page.slice(page.num_rows - 1).to_pylist()[0]
            after = (_micros(last["ts"]), str(last["event_id"]))

    def count_events(self, project_id: str, since: datetime | None = None) -> list[EventCount]:
        text, params = queries.count_events(project_id, since).duckdb()
        with self._cursor() as cur:
            rows = cur.execute(text, params).fetchall()
        return [EventCount(event, hour.replace(tzinfo=UTC), int(n)) for event, hour, n in rows]

    def sql(self, query: str, params: Sequence[object] = ()) -> pa.Table:
        text, values = queries.user_query(query, params).duckdb()
        with self._cursor() as cur:
            try:
                table = cur.sql(text, params=values).to_arrow_table()
            except duckdb.Error as exc:
                raise InvalidQuery(f"the query failed: {exc}") from exc
        return queries.normalize(table)

    def sql_batches(
        self,
        query: str,
        params: Sequence[object] = (),
        tables: Mapping[str, pa.Table] | None = None,
        batch_rows: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        extra = queries.caller_tables(tables)
        text, values = queries.user_query(query, params, frozenset(extra)).duckdb()
        with self._cursor() as cur:
            for name, table in extra.items():  # registered on this cursor only
                cur.register(name, queries.naive_utc(table))
            try:
                reader = cur.sql(text, params=values).to_arrow_reader(batch_rows)
                yield from queries.sized(reader, batch_rows)
            except duckdb.Error as exc:
                raise InvalidQuery(f"the query failed: {exc}") from exc

    def ping(self) -> None:
        with self._cursor() as cur:
            cur.execute("SELECT 1").fetchall()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            return self._db.cursor()


def _micros(when: datetime) -> int:
    """µs since the epoch of a stored time (naive means UTC)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def _naive(when: datetime) -> datetime:
    """A UTC time as the naive TIMESTAMP the events table holds."""
    return when.astimezone(UTC).replace(tzinfo=None)


def _count(row: tuple[object, ...] | None) -> int:
    return int(str(row[0])) if row else 0


def _naive_times(table: pa.Table) -> pa.Table:
    """UTC timestamps → naive (TIMESTAMP columns hold UTC; no time-zone cast on insert)."""
    for name in ("ts", "received_at"):
        index = table.schema.get_field_index(name)
        table = table.set_column(
            index, pa.field(name, _NAIVE, nullable=False), table.column(index).cast(_NAIVE)
        )
    return table


def _naive_us(micros: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=micros)
