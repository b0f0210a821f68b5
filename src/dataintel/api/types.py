"""Bounded scalar types for API schemas: what every storage engine can hold, shown in OpenAPI.

An integer that reaches a metadata column must fit the column on PostgreSQL (``INTEGER``:
32-bit; ``BIGINT``: 64-bit; SQLite holds 64-bit); a timestamp must be representable by
every store the service writes or queries, the narrowest being ClickHouse's
``DateTime64(6)`` (1900-01-01 … 2299-12-31) and arithmetic on Python datetimes (year 1 …
9999). API times are therefore bounded to [1970-01-01T00:00:00Z, 2299-12-31T23:59:59.999999Z].
Out of range is a 422 naming the field, never an overflow in a driver (a 500).

Every plane's schemas use these (config, auth, ingest, export; features/ may import them
too): ``Annotated[Int32, Query(...)]`` or ``field: Id32 = Field(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema as cs

INT32_MAX = 2**31 - 1  # PostgreSQL INTEGER
INT64_MAX = 2**63 - 1  # PostgreSQL BIGINT, SQLite INTEGER

Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
NonNegInt32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
Id32 = Annotated[int, Field(ge=1, le=INT32_MAX)]  # an autoincrement id in an INTEGER column
Version32 = Annotated[int, Field(ge=1, le=INT32_MAX)]  # a config / feature version
NonNegInt64 = Annotated[int, Field(ge=0, le=INT64_MAX)]  # a BIGINT counter

TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_TIME_RANGE = "1970-01-01T00:00:00Z … 2299-12-31T23:59:59.999999Z"


def _in_range(value: datetime) -> datetime:
    """Naive means UTC (as for event times); outside the range is a validation error."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    try:
        utc = aware.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00
        utc = None
    if utc is None or not TIME_MIN <= utc <= TIME_MAX:
        raise ValueError(f"must be between {_TIME_RANGE}")
    return utc


def _iso_only(value: Any) -> Any:
    """Only ISO-8601 text (or a datetime, in Python): pydantic alone would also read a
    number, or text such as "0.5", as seconds since the epoch, which the schema does not
    declare."""
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()
    ):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z")
    return value


@dataclass(frozen=True)
class _ShowRange:
    """Write the range into the JSON schema (OpenAPI has no min/max for date-time strings;
    ``formatMinimum``/``formatMaximum`` are the JSON Schema vocabulary's words for it)."""

    def __get_pydantic_json_schema__(
        self, schema: cs.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out: dict[str, Any] = handler(schema)
        out.update(
            formatMinimum=TIME_MIN.isoformat().replace("+00:00", "Z"),
            formatMaximum=TIME_MAX.isoformat().replace("+00:00", "Z"),
        )
        return out


# Any ISO-8601 date-time (naive: UTC), returned as aware UTC, within the range.
UtcTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_in_range), _ShowRange()]
# The same, but an offset is required.
AwareUtcTime = Annotated[
    AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_in_range), _ShowRange()
]
