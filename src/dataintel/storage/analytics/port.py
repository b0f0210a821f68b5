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


@dataclass(frozen=True, slots=True)
class BatchRun:
    """One run of a batch feature version: the value per entity as of ``computed_at``."""

    project_id: str
    feature: str
    version: int
    computed_at: int  # µs
    values: Mapping[str, object]  # entity id -> JSON scalar
    empty: object = None  # the value of an entity the run did not find
    entity_key: str = "user_id"  # GDPR erasure removes a subject's ids of the envelope keys


# The marker row of a run (entity ids are never empty): its value is the run's ``empty``, so
# the runs are known (as of a time) even when one found no entity.
RUN_MARKER = ""
# Columns of the batch_feature_values table (``value`` is JSON text).
BATCH_COLUMNS = ("project_id", "feature", "version", "computed_at", "entity_key", "entity", "value")
BATCH_SCHEMA = pa.schema(
    [
        ("project_id", pa.string()),
        ("feature", pa.string()),
        ("version", pa.int64()),
        ("computed_at", pa.timestamp("us", tz="UTC")),
        ("entity_key", pa.string()),
        ("entity", pa.string()),
        ("value", pa.string()),
    ]
)


def batch_table(run: BatchRun) -> pa.Table:
    """The rows of ``run``."""
    import orjson

    n = len(run.values) + 1
    return pa.Table.from_pydict(
        {
            "project_id": [run.project_id] * n,
            "feature": [run.feature] * n,
            "version": [run.version] * n,
            "computed_at": pa.array([run.computed_at] * n, pa.timestamp("us", tz="UTC")),
            "entity_key": [run.entity_key] * n,
            "entity": [RUN_MARKER, *run.values],
            "value": [orjson.dumps(v).decode() for v in (run.empty, *run.values.values())],
        },
        schema=BATCH_SCHEMA,
    )


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
        """Delete every event of ``subject`` (GDPR), and the batch feature values of its
        user, cart and session ids (``batch_feature_values`` rows of those entity keys), so
        that none of their bytes stay in the store's files, and count one more erasure;
        returns the events deleted. The caller holds
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
    def write_batch_values(self, run: BatchRun) -> None:
        """Keep the values of a batch feature run in ``batch_feature_values`` (readable by
        ``sql``; with its ``RUN_MARKER`` row), replacing any earlier write of the same
        (project, feature, version, computed_at): idempotent."""

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

    def staleness(self) -> int | None:
        """How many seconds old the data is when the store could not bring it up to date
        (a data lake replica whose lake does not answer); None: current."""
        return None

    @abstractmethod
    def ping(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...
