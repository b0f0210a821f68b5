"""The report kinds over raw events: ``events`` (the event export query) and
``event_counts`` (events per event name per UTC day over a range)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from dataintel.api.types import UtcTime
from dataintel.export.service import EXPORT_SCHEMA, ExportService
from dataintel.model.fields import EVENT_NAME
from dataintel.reports.data import ChartSpec, ReportContext, ReportData
from dataintel.reports.errors import ReportError
from dataintel.storage.analytics.port import EventQuery

EventName = Annotated[str, StringConstraints(pattern=EVENT_NAME, max_length=128)]
MAX_EVENT_ROWS = 1_000_000
MAX_COUNT_DAYS = 3660
MAX_COUNT_ROWS = 1_000_000
DEFAULT_DAYS = 30


def _check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start >= end:
        raise ValueError("end must be after start")


def _day_text(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


class EventsParams(BaseModel):
    """The event export query (as ``GET /v1/export/events``), as one file."""

    model_config = ConfigDict(extra="forbid")

    start: UtcTime | None = Field(default=None, description="Event time, inclusive.")
    end: UtcTime | None = Field(default=None, description="Event time, exclusive.")
    events: list[EventName] = Field(default=[], max_length=100, description="Event names.")
    user_id: str | None = Field(default=None, max_length=256)
    limit: int = Field(
        default=100_000,
        ge=1,
        le=MAX_EVENT_ROWS,
        description="Most events the report may hold; a range holding more fails the report "
        "(narrow it, or stream it with GET /v1/export/events).",
    )

    @model_validator(mode="after")
    def _range(self) -> EventsParams:
        _check_range(self.start, self.end)
        return self


def events_report(ctx: ReportContext, params: EventsParams) -> ReportData:
    query = EventQuery(
        project_id=ctx.project_id,
        start=params.start,
        end=params.end,
        events=tuple(params.events),
        user_id=params.user_id,
        batch_rows=min(params.limit + 1, 10_000),
    )
    batches, rows = [], 0
    for batch in ExportService(ctx.analytics).batches(query):
        rows += batch.num_rows
        if rows > params.limit:
            raise ReportError(
                f"the query matches more than limit={params.limit} events: narrow it, raise "
                f"limit (at most {MAX_EVENT_ROWS}), or stream it with GET /v1/export/events"
            )
        batches.append(batch)
    table = pa.Table.from_batches(batches, schema=EXPORT_SCHEMA)
    since = _day_text(params.start) if params.start else "the first event"
    until = _day_text(params.end) if params.end else "now"
    return ReportData(f"Events from {since} to {until}", {"events": table})


class EventCountsParams(BaseModel):
    """Events per event name per UTC day over [start, end)."""

    model_config = ConfigDict(extra="forbid")

    start: UtcTime | None = Field(
        default=None, description=f"Inclusive; default: {DEFAULT_DAYS} days before end."
    )
    end: UtcTime | None = Field(
        default=None, description="Exclusive; default: when the report runs."
    )
    events: list[EventName] = Field(
        default=[],
        max_length=100,
        description="Count these (every day, zeros included); default: every event seen.",
    )

    @model_validator(mode="after")
    def _range(self) -> EventCountsParams:
        _check_range(self.start, self.end)
        if self.start and self.end and self.end - self.start > timedelta(days=MAX_COUNT_DAYS):
            raise ValueError(f"the range spans more than {MAX_COUNT_DAYS} days")
        return self


COUNTS_SQL = (
    "SELECT date_trunc('day', ts) AS day, event, count(*) AS n FROM events "
    "WHERE project_id = ? AND ts >= ? AND ts < ?{only} GROUP BY ALL"
)
DAILY_SCHEMA = pa.schema([("day", pa.date32()), ("event", pa.string()), ("events", pa.int64())])


def event_counts_report(ctx: ReportContext, params: EventCountsParams) -> ReportData:
    end = params.end or ctx.now
    start = params.start or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise ReportError(f"start ({start.isoformat()}) is not before end ({end.isoformat()})")
    values: list[object] = [ctx.project_id, start, end]
    only = ""
    if params.events:
        only, values = " AND list_contains(?, event)", [*values, list(params.events)]
    found = ctx.analytics.sql(COUNTS_SQL.format(only=only), values).to_pylist()
    counts = {(_as_date(r["day"]), str(r["event"])): int(r["n"]) for r in found}
    names = sorted(set(params.events) or {name for _, name in counts})
    days = _days(start, end)
    if len(days) * len(names) > MAX_COUNT_ROWS:
        raise ReportError(
            f"{len(days)} days x {len(names)} event names exceed {MAX_COUNT_ROWS} rows: "
            "narrow the range or name the events"
        )
    rows = [(d, n, counts.get((d, n), 0)) for d in days for n in names]
    table = pa.table(
        {
            "day": pa.array([r[0] for r in rows], pa.date32()),
            "event": pa.array([r[1] for r in rows], pa.string()),
            "events": pa.array([r[2] for r in rows], pa.int64()),
        },
        schema=DAILY_SCHEMA,
    )
    chart = ChartSpec("line", "daily", "day", "events", "event", "Events per day")
    title = f"Events per day from {_day_text(start)} to {_day_text(end)}"
    return ReportData(title, {"daily": table}, (chart,))


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(f"not a day: {value!r}")


def _days(start: datetime, end: datetime) -> list[date]:
    """The UTC days [start, end) touches."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
