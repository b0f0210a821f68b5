"""Event export: filters → a streamed body in the asked format, constant memory.

Rows come out ordered by (timestamp, event_id). A cursor is the text
``<timestamp>,<event_id>`` of the last row received (timestamp as exported: ISO-8601 UTC with
microseconds), so a client can resume an interrupted download from its last row; with
``limit`` the response also carries it in ``X-Next-Cursor`` when more rows follow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from dataintel.api.types import TIME_MAX, TIME_MIN
from dataintel.errors import InvalidInput
from dataintel.export import formats
from dataintel.export.formats import ExportFormat
from dataintel.storage.analytics.port import AnalyticsStore, EventQuery

EXPORT_COLUMNS = (
    ("event_id", "event_id"),
    ("event", "event"),
    ("ts", "timestamp"),
    ("received_at", "received_at"),
    ("user_id", "user_id"),
    ("cart_id", "cart_id"),
    ("session_id", "session_id"),
    ("pipeline_id", "pipeline_id"),
    ("pipeline_version", "pipeline_version"),
    ("properties", "properties"),
)
STREAM_BATCH_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class ExportRequest:
    start: datetime | None
    end: datetime | None
    events: tuple[str, ...]
    user_id: str | None
    cursor: str | None
    limit: int | None
    fmt: ExportFormat


@dataclass(slots=True)
class RowCount:
    """Rows handed to the encoder so far (the audit entry of an export records them)."""

    rows: int = 0

    def count(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            self.rows += batch.num_rows
            yield batch


@dataclass(frozen=True, slots=True)
class ExportStream:
    body: Iterator[bytes]
    media_type: str
    next_cursor: str | None
    sent: RowCount


def parse_cursor(cursor: str) -> tuple[int, str]:
    text, sep, event_id = cursor.partition(",")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if not sep or not event_id or when is None or when.tzinfo is None or not _in_range(when):
        raise InvalidInput.field(
            ["query", "cursor"], "must read '<ISO-8601 UTC timestamp>,<event_id>' of a row"
        )
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // _MICRO, event_id


def _in_range(when: datetime) -> bool:
    try:
        return TIME_MIN <= when.astimezone(UTC) <= TIME_MAX
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        return False


_MICRO = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)


def format_cursor(ts: datetime, event_id: str) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "," + event_id


def shape(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of the analytics store's events (EVENT_SCHEMA) as exported (EXPORT_SCHEMA):
    the rows of /v1/export/events, of the report kind `events` and of the data lake."""
    arrays = [batch.column(src) for src, _ in EXPORT_COLUMNS]
    return pa.RecordBatch.from_arrays(arrays, names=[dst for _, dst in EXPORT_COLUMNS])


class ExportService:
    def __init__(self, analytics: AnalyticsStore) -> None:
        self.analytics = analytics

    def events(self, project_id: str, req: ExportRequest) -> ExportStream:
        if req.start and req.end and req.start >= req.end:
            raise InvalidInput.field(["query", "end"], "must be after start")
        query = EventQuery(
            project_id=project_id,
            start=req.start,
            end=req.end,
            events=req.events,
            user_id=req.user_id,
            after=parse_cursor(req.cursor) if req.cursor else None,
            batch_rows=(req.limit + 1) if req.limit else STREAM_BATCH_ROWS,
        )
        batches = self.batches(query)
        next_cursor = None
        if req.limit:
            page = next(batches, None)
            rows = page.num_rows if page is not None else 0
            if page is not None and rows > req.limit:
                page = page.slice(0, req.limit)
                last = page.slice(req.limit - 1, 1).to_pylist()[0]
                next_cursor = format_cursor(last["timestamp"], last["event_id"])
            batches = iter([page] if page is not None and page.num_rows else [])
        sent = RowCount()
        return ExportStream(
            formats.encode(sent.count(batches), req.fmt, EXPORT_SCHEMA),
            formats.MEDIA_TYPES[req.fmt],
            next_cursor,
            sent,
        )

    def batches(self, query: EventQuery) -> Iterator[pa.RecordBatch]:
        """The matching events as exported (EXPORT_SCHEMA), ordered by (timestamp,
        event_id), in batches of ``query.batch_rows``: what a report of kind ``events``
        holds."""
        return (shape(b) for b in self.analytics.scan_events(query))


EXPORT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("user_id", pa.string()),
        ("cart_id", pa.string()),
        ("session_id", pa.string()),
        ("pipeline_id", pa.string()),
        ("pipeline_version", pa.int64()),
        ("properties", pa.string()),
    ]
)
