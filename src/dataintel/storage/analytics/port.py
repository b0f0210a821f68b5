"""The AnalyticsStore port: every accepted event, queryable by SQL, written exactly once.

``apply`` is idempotent: it skips log entries below the next offset it has stored for their
partition, and events whose (project_id, event_id) it already holds; it stores the new
positions atomically with the rows (DuckDB: one transaction; ClickHouse: a deduplication
token per batch plus a ReplacingMergeTree keyed by event).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from dataintel.model.retention import EventCutoffs
from dataintel.model.subject import Subject
from dataintel.storage.eventlog.port import LogEntry

# Columns of the events table, in order. Times are UTC microseconds since the epoch in
# the log; the table stores them as TIMESTAMP (µs). ``properties`` is JSON text.
EVENT_COLUMNS = (
    "project_id",
    "pipeline_id",
    "pipeline_version",
    "event_id",
    "event",
    "ts",
    "received_at",
    "user_id",
    "cart_id",
    "session_id",
    "properties",
    "log_partition",
    "log_offset",
)


@dataclass(frozen=True, slots=True)
class EventQuery:
    project_id: str
    start: datetime | None = None  # inclusive, event time
    end: datetime | None = None  # exclusive, event time
    events: Sequence[str] = ()
    user_id: str | None = None
    cart_id: str | None = None
    session_id: str | None = None
    pipeline_id: str | None = None
    after: tuple[int, str] | None = None  # cursor: (ts µs, event_id) of the last row seen
    batch_rows: int = 10_000


@dataclass(frozen=True, slots=True)
class EventCount:
    event: str
    hour: datetime  # start of the hour (UTC) of received_at
    count: int


@dataclass(slots=True)
class ApplyResult:
    inserted: int = 0
    skipped: int = 0
    positions: dict[int, int] = field(default_factory=dict)  # next offset per partition
    # The entries as decoded by the sink (EVENT_SCHEMA), so later sinks of the same batch
    # (the feature engine) do not decode them again.
    batch: pa.Table | None = None


class AnalyticsStore(ABC):
    dialect: str  # "duckdb" | "clickhouse"
    positions_in_memory = False  # True: positions() reads no storage (cheap per request)

    @abstractmethod
    def apply(self, entries: Sequence[LogEntry]) -> ApplyResult:
        """Write the events of ``entries`` exactly once (see module doc)."""

    @abstractmethod
    def restore(self, entries: Sequence[LogEntry]) -> int:
        """Reconciliation's repair: insert the events of ``entries`` whose (project_id,
        event_id) the store does not hold (the first per event by log order), whatever the
        stored positions, which stay as they are; returns the rows inserted. Idempotent: a
        second call with the same entries inserts nothing. The caller holds the processor's
        lock."""

    @abstractmethod
    def erase(self, subject: Subject) -> int:
        """Delete every event of ``subject`` (GDPR) so that none of their bytes stay in the
        store's files, and count one more erasure; returns the rows deleted. The caller holds
        the processor's lock (no batch is applied meanwhile)."""

    @abstractmethod
    def delete_events_before(self, project_id: str, cutoffs: EventCutoffs) -> int:
        """Delete the project's events whose event time is before their event's cutoff
        (retention), so that none of their bytes stay in the store's files, as ``erase``
        does; when any row went, count one more erasure. Returns the rows deleted. The
        caller holds the processor's lock."""

    @abstractmethod
    def erasures(self) -> int:
        """How many erasures the store has carried out: part of the analytics cache's
        watermark, so no cached answer outlives the events it counted."""

    @abstractmethod
    def positions(self) -> dict[int, int]:
        """Per partition, the next log offset not yet applied."""

    @abstractmethod
    def scan_events(self, query: EventQuery) -> Iterator[pa.RecordBatch]:
        """Matching events ordered by (ts, event_id), in batches of ``query.batch_rows``,
        with constant memory whatever the result size."""

    @abstractmethod
    def count_events(self, project_id: str, since: datetime | None = None) -> list[EventCount]:
        """Stored events per event name and hour of arrival."""

    @abstractmethod
    def sql(self, query: str, params: Sequence[object] = ()) -> pa.Table:
        """Run a read-only query written in DuckDB SQL (transpiled for ClickHouse)."""

    @abstractmethod
    def sql_batches(
        self,
        query: str,
        params: Sequence[object] = (),
        tables: Mapping[str, pa.Table] | None = None,
        batch_rows: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """``sql`` streamed in batches of at most ``batch_rows`` rows, with constant memory
        whatever the result size. The query may also read ``tables``: Arrow tables of the
        caller (e.g. training-set labels), visible by name to this query only, for as long
        as the iterator runs (timestamp columns are compared as UTC)."""

    @abstractmethod
    def ping(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...
