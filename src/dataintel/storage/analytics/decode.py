"""Log entries → one Arrow table with EVENT_COLUMNS: the processor's hot path.

One pass of ``orjson.loads`` per entry; the fields are picked with one C-level
``itemgetter`` call and the rows are transposed with ``zip``, so Python does no per-field
work; Arrow builds each column from its list in C.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter, itemgetter
from typing import Any

import orjson
import pyarrow as pa

from dataintel.storage.analytics.port import EVENT_COLUMNS
from dataintel.storage.eventlog.port import LogEntry

TIMESTAMP = pa.timestamp("us", tz="UTC")

# The one Arrow schema every adapter reads and writes (scan_events yields it too).
EVENT_SCHEMA = pa.schema(
    [
        pa.field("project_id", pa.string(), nullable=False),
        pa.field("pipeline_id", pa.string(), nullable=False),
        pa.field("pipeline_version", pa.int64(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("received_at", TIMESTAMP, nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("cart_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("properties", pa.string(), nullable=False),
        pa.field("log_partition", pa.int64(), nullable=False),
        pa.field("log_offset", pa.int64(), nullable=False),
    ]
)
assert tuple(EVENT_SCHEMA.names) == EVENT_COLUMNS

_VALUE_FIELDS = EVENT_COLUMNS[:-2]  # everything but the log position, in order
_PROPERTIES = _VALUE_FIELDS.index("properties")
_OPTIONAL = frozenset({"user_id", "cart_id", "session_id"})
_pick = itemgetter(*_VALUE_FIELDS)
_partition = attrgetter("partition")
_offset = attrgetter("offset")


class CorruptEntry(ValueError):
    """A log entry that is not a StoredEvent (a bug upstream of the log: fail loudly)."""


def decode_entries(entries: Sequence[LogEntry]) -> pa.Table:
    """The events of ``entries``, in order, as a table of EVENT_SCHEMA."""
    if not entries:
        return EVENT_SCHEMA.empty_table()
    try:
        columns = _columns_fast(entries)
    except (KeyError, TypeError, orjson.JSONDecodeError):
        columns = _columns_tolerant(entries)
    columns[_PROPERTIES] = _properties_text(columns[_PROPERTIES])
    columns.append([*map(_partition, entries)])
    columns.append([*map(_offset, entries)])
    try:
        arrays = [
            pa.array(values, type=field.type)
            for values, field in zip(columns, EVENT_SCHEMA, strict=True)
        ]
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise CorruptEntry(f"log entries do not hold stored events: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def _columns_fast(entries: Sequence[LogEntry]) -> list[Sequence[Any]]:
    loads = orjson.loads
    rows = [_pick(loads(entry.value)) for entry in entries]
    return list(zip(*rows, strict=True))


def _columns_tolerant(entries: Sequence[LogEntry]) -> list[Sequence[Any]]:
    """Slow path: optional fields may be absent; anything else missing is an error."""
    columns: list[list[Any]] = [[] for _ in _VALUE_FIELDS]
    for entry in entries:
        try:
            value = orjson.loads(entry.value)
            for name, column in zip(_VALUE_FIELDS, columns, strict=True):
                column.append(value.get(name) if name in _OPTIONAL else value[name])
        except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
            where = f"partition {entry.partition} offset {entry.offset}"
            raise CorruptEntry(f"log entry at {where} is not a stored event: {exc!r}") from exc
    return list(columns)


def _properties_text(values: Sequence[Any]) -> list[str]:
    dumps = orjson.dumps
    return [dumps(value).decode() if value is not None else "{}" for value in values]
