"""The query parameters every analysis shares, parsed and checked in one place.

``from`` / ``to`` (the period, half-open, UTC), ``interval`` (hour, day, week, month: the
points of a time series), ``filter`` (repeatable: ``<field><op><value>``, on an envelope
field or ``properties.<name>``) and ``breakdown`` (an envelope field or a property). An
endpoint takes them with ``params: Annotated[AnalyticsParams, Depends(analytics_params)]``;
bad values are a 422 problem naming the query parameter.

Time series: ``hour`` / ``day`` / ``week`` points are fixed steps starting at ``from``
(the last one may be shorter); ``month`` points follow calendar months (the first from
``from`` to the first of the next month). The previous period is the one of the same length
just before ``from``, cut into points the same way; its i-th point stands beside the i-th.

``as_of``: numbers are computed from the events with a timestamp before
``min(to, now rounded down to the minute)``; ``to`` defaults to that instant, ``from`` to
seven days before ``to``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import Query

from dataintel.api.types import UtcTime
from dataintel.errors import InvalidInput
from dataintel.model.fields import FIELD_NAME

MAX_POINTS = 1000  # points of one time series
MAX_RANGE = timedelta(days=3660)  # about ten years
MAX_FILTERS = 20
MAX_VALUE_LENGTH = 256
DEFAULT_RANGE = timedelta(days=7)
# Envelope fields an analysis may filter or break down by (columns of the events table).
ENVELOPE_COLUMNS = ("event", "user_id", "cart_id", "session_id", "pipeline_id")
PROPERTY_PREFIX = "properties."

Operator = Literal["=", "!=", ">", ">=", "<", "<="]
_FILTER = re.compile(r"^(?P<field>[A-Za-z_][A-Za-z0-9_.]*)(?P<op>!=|>=|<=|=|>|<)(?P<value>.*)$")
_PROPERTY = re.compile(FIELD_NAME)


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


STEP = {
    Interval.HOUR: timedelta(hours=1),
    Interval.DAY: timedelta(days=1),
    Interval.WEEK: timedelta(weeks=1),
}


@dataclass(frozen=True, slots=True)
class EventField:
    """An envelope column (``user_id``) or a property (``properties.channel``)."""

    column: str | None  # the envelope column, or None for a property
    prop: str | None  # the property name, or None for an envelope column

    @property
    def name(self) -> str:
        return self.column if self.column is not None else PROPERTY_PREFIX + str(self.prop)


@dataclass(frozen=True, slots=True)
class Filter:
    field: EventField
    op: Operator
    value: str
    number: float | None  # the value as a number (required by >, >=, <, <=)

    @property
    def text(self) -> str:
        return f"{self.field.name}{self.op}{self.value}"


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class AnalyticsParams:
    start: datetime  # inclusive
    end: datetime  # exclusive
    interval: Interval
    as_of: datetime  # events before this instant are read (<= end)
    filters: tuple[Filter, ...] = ()
    breakdown: EventField | None = None
    now: datetime | None = None  # the minute the defaults were resolved against

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> AnalyticsParams:
        """The period of the same length just before this one (same interval and filters)."""
        start = self.start - self.length
        return replace(self, start=start, end=self.start, as_of=min(self.start, self.as_of))

    def buckets(self) -> list[Bucket]:
        """The points of the time series, in order."""
        return buckets(self.start, self.end, self.interval)


def add_months(when: datetime, months: int) -> datetime:
    """The first instant of the calendar month ``months`` after the month of ``when``."""
    index = when.year * 12 + when.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def buckets(start: datetime, end: datetime, interval: Interval) -> list[Bucket]:
    out: list[Bucket] = []
    lower = start
    k = 0
    while lower < end:
        k += 1
        upper = add_months(start, k) if interval is Interval.MONTH else start + STEP[interval] * k
        out.append(Bucket(lower, min(upper, end)))
        lower = upper
    return out


def point_count(start: datetime, end: datetime, interval: Interval) -> int:
    if interval is Interval.MONTH:
        return (end.year - start.year) * 12 + end.month - start.month + 1
    return math.ceil((end - start) / STEP[interval])


def parse_field(text: str, loc: list[str | int]) -> EventField:
    if text in ENVELOPE_COLUMNS:
        return EventField(text, None)
    if text.startswith(PROPERTY_PREFIX) and _PROPERTY.match(text[len(PROPERTY_PREFIX) :]):
        return EventField(None, text[len(PROPERTY_PREFIX) :])
    raise InvalidInput.field(
        loc,
        f"unknown field {text!r}: use one of {', '.join(ENVELOPE_COLUMNS)} or properties.<name>",
    )


def parse_filter(text: str) -> Filter:
    loc: list[str | int] = ["query", "filter"]
    match = _FILTER.match(text)
    if match is None:
        raise InvalidInput.field(
            loc, f"{text!r} must look like <field><op><value>, op one of = != > >= < <="
        )
    target = parse_field(match["field"], loc)
    op: Operator = match["op"]  # type: ignore[assignment]
    value = match["value"]
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidInput.field(loc, f"a value has at most {MAX_VALUE_LENGTH} characters")
    number = _number(value)
    if op not in ("=", "!=") and (number is None or target.column is not None):
        raise InvalidInput.field(
            loc, f"{text!r}: {op} compares a property with a number (e.g. properties.price>10)"
        )
    return Filter(target, op, value, number)


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def resolve(
    start: datetime | None,
    end: datetime | None,
    interval: Interval | None,
    filters: list[str] | None = None,
    breakdown: str | None = None,
    now: datetime | None = None,
) -> AnalyticsParams:
    """Defaults filled in and every rule checked (InvalidInput naming the parameter)."""
    now_minute = _minute(now or datetime.now(UTC))
    end = end if end is not None else now_minute
    start = start if start is not None else end - DEFAULT_RANGE
    if start >= end:
        raise InvalidInput.field(["query", "from"], "must be before 'to'")
    if end - start > MAX_RANGE:
        raise InvalidInput.field(["query", "to"], "the period is at most 3660 days long")
    if interval is None:
        interval = Interval.HOUR if end - start <= timedelta(days=2) else Interval.DAY
    points = point_count(start, end, interval)
    if points > MAX_POINTS:
        raise InvalidInput.field(
            ["query", "interval"],
            f"{interval.value} points over this period: {points}, at most {MAX_POINTS}; "
            "choose a longer interval or a shorter period",
        )
    if len(filters or ()) > MAX_FILTERS:
        raise InvalidInput.field(["query", "filter"], f"at most {MAX_FILTERS} filters")
    return AnalyticsParams(
        start=start,
        end=end,
        interval=interval,
        as_of=min(end, now_minute),
        filters=tuple(parse_filter(f) for f in filters or ()),
        breakdown=parse_field(breakdown, ["query", "breakdown"]) if breakdown else None,
        now=now_minute,
    )


def analytics_params(
    start: Annotated[
        UtcTime | None,
        Query(alias="from", description="Start of the period (inclusive). Default: to - 7 days."),
    ] = None,
    end: Annotated[
        UtcTime | None,
        Query(
            alias="to",
            description="End of the period (exclusive). Default: now, rounded down to the minute.",
        ),
    ] = None,
    interval: Annotated[
        Interval | None,
        Query(description="Time-series points. Default: hour up to 2 days, else day."),
    ] = None,
    filter: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_FILTERS,
            description="Repeatable '<field><op><value>': field = event, user_id, cart_id, "
            "session_id, pipeline_id or properties.<name>; op = = != (text) or > >= < <= "
            "(numbers, properties only). Every number is computed from the matching events.",
        ),
    ] = None,
    breakdown: Annotated[
        str | None,
        Query(max_length=140, description="An envelope field or properties.<name>."),
    ] = None,
) -> AnalyticsParams:
    """The FastAPI dependency of the shared parameters."""
    return resolve(start, end, interval, filter, breakdown)
