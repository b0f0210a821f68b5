"""Label rows of a training-set request → one Arrow table, checked.

Whatever the input (JSON rows, a CSV or a Parquet file), the result has the input's columns
in order, with ``entity_id`` as non-empty strings (integers stringified) and ``timestamp``
as UTC microseconds (``timestamp[us, UTC]``): ISO-8601 with any offset (naive: UTC), epoch
seconds or milliseconds (numbers above 1e11 are milliseconds, as on ingest), or a Parquet
timestamp. Every problem is a 422 naming the row and column (or the file), and more than
``MAX_ROWS`` rows a 413.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from dataintel.errors import InvalidInput, PayloadTooLarge
from dataintel.features.offline.schemas import ENTITY_ID, MAX_ROWS, TIMESTAMP
from dataintel.features.serving.schemas import FEATURE_TIME_MAX, FEATURE_TIME_MIN
from dataintel.ingest.envelope import MS_THRESHOLD, timestamp_us
from dataintel.model.fields import ENTITY_ID_MAX

TIME = pa.timestamp("us", tz="UTC")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = (FEATURE_TIME_MIN - EPOCH).days * 86_400 * 1_000_000  # 1970-01-01
MAX_US = (FEATURE_TIME_MAX - EPOCH).days * 86_400 * 1_000_000  # 2262-01-01, exclusive
Loc = list[str | int]


def too_many(rows: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{rows} rows: a training set holds at most {MAX_ROWS:,} rows")


# ---- JSON rows ------------------------------------------------------------------------------


def rows_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """The ``rows`` of a JSON body; other keys become columns (kept as given)."""
    if len(rows) > MAX_ROWS:
        raise too_many(len(rows))
    ids: list[str] = []
    times: list[int] = []
    extras: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        ids.append(_row_id(row.get(ENTITY_ID), ["body", "rows", i, ENTITY_ID]))
        times.append(_row_time(row.get(TIMESTAMP), ["body", "rows", i, TIMESTAMP]))
        extra = {k: v for k, v in row.items() if k != ENTITY_ID and k != TIMESTAMP}
        names.update(dict.fromkeys(extra))
        extras.append(extra)
    columns: dict[str, pa.Array] = {
        ENTITY_ID: pa.array(ids, pa.string()),
        TIMESTAMP: pa.array(times, pa.int64()).cast(TIME),
    }
    for name in names:
        try:
            columns[name] = pa.array([e.get(name) for e in extras])
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise InvalidInput.field(
                ["body", "rows"], f"column {name!r} mixes types across rows: {exc}"
            ) from None
    return pa.table(columns)


def _row_id(value: Any, loc: Loc) -> str:
    if type(value) is int:
        return str(value)
    if type(value) is not str or not value:
        raise InvalidInput.field(loc, "required: a non-empty string (or an integer)")
    if len(value) > ENTITY_ID_MAX:
        raise InvalidInput.field(loc, f"longer than {ENTITY_ID_MAX} characters")
    return value


def _row_time(value: Any, loc: Loc) -> int:
    us = timestamp_us(value) if type(value) is not bool else None
    if us is None or not MIN_US <= us < MAX_US:
        raise InvalidInput.field(loc, _TIME_MSG)
    return us


_TIME_MSG = "expected an ISO-8601 time or epoch seconds/milliseconds between 1970 and 2261 (UTC)"


# ---- files ----------------------------------------------------------------------------------


def file_table(data: bytes) -> pa.Table:
    """A Parquet (by its magic bytes) or CSV upload, checked."""
    loc: Loc = ["body", "file"]
    if not data:
        raise InvalidInput.field(loc, "the file is empty")
    try:
        if data[:4] == b"PAR1":
            rows = pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
            if rows > MAX_ROWS:
                raise too_many(rows)
            table = pq.read_table(io.BytesIO(data))
        else:
            table = pacsv.read_csv(
                io.BytesIO(data),
                convert_options=pacsv.ConvertOptions(
                    column_types={ENTITY_ID: pa.string(), TIMESTAMP: pa.string()},
                    strings_can_be_null=True,
                ),
            )
        names = table.column_names  # decodes them: may fail on bytes that are not UTF-8
    except (pa.ArrowException, OSError, ValueError) as exc:  # UnicodeDecodeError too
        raise InvalidInput.field(loc, f"not a readable Parquet or CSV file: {exc}") from None
    if table.num_rows > MAX_ROWS:
        raise too_many(table.num_rows)
    for name in (ENTITY_ID, TIMESTAMP):
        if name not in names:
            raise InvalidInput.field(loc, f"the file has no column '{name}'")
    if table.num_rows == 0:
        raise InvalidInput.field(loc, "the file has no rows")
    if len(set(names)) != len(names):
        raise InvalidInput.field(loc, "the file has duplicate column names")
    table = table.combine_chunks()
    ids = _file_ids(table.column(ENTITY_ID), [*loc, ENTITY_ID])
    times = _file_times(table.column(TIMESTAMP), [*loc, TIMESTAMP])
    table = table.set_column(table.column_names.index(ENTITY_ID), ENTITY_ID, ids)
    return table.set_column(table.column_names.index(TIMESTAMP), TIMESTAMP, times)


def _first(mask: pa.Array | pa.ChunkedArray) -> int:
    return int(np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False)))[0])


def _file_ids(column: pa.ChunkedArray, loc: Loc) -> pa.Array:
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        column = column.cast(pa.string())
    elif not pa.types.is_string(kind):
        raise InvalidInput.field(loc, f"must hold strings or integers, not {kind}")
    if column.null_count:
        row = _first(column.is_null())
        raise InvalidInput.field(loc, f"row {row}: missing (null)")
    lengths = pc.utf8_length(column)
    bad = pc.or_(pc.equal(lengths, 0), pc.greater(lengths, ENTITY_ID_MAX))
    if pc.any(bad).as_py():
        row = _first(bad)
        raise InvalidInput.field(loc, f"row {row}: empty or longer than {ENTITY_ID_MAX} characters")
    return column.combine_chunks()


def _file_times(column: pa.ChunkedArray, loc: Loc) -> pa.Array:
    if column.null_count:
        raise InvalidInput.field(loc, f"row {_first(column.is_null())}: missing (null)")
    us = _micros(column.combine_chunks(), loc)
    bad = (us < MIN_US) | (us >= MAX_US)
    if bad.any():
        raise InvalidInput.field(loc, f"row {int(np.flatnonzero(bad)[0])}: {_TIME_MSG}")
    return pa.array(us, pa.int64()).cast(TIME)


def _micros(array: pa.Array, loc: Loc) -> np.ndarray[Any, np.dtype[np.int64]]:
    kind = array.type
    if pa.types.is_timestamp(kind):
        return _ints(array.cast(pa.timestamp("us", kind.tz)).cast(pa.int64()))
    if pa.types.is_date(kind):
        return _ints(array.cast(pa.timestamp("us")).cast(pa.int64()))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _epoch(array, loc)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text_times(array.cast(pa.string()), loc)
    raise InvalidInput.field(loc, f"must hold times (ISO-8601 text, epoch numbers), not {kind}")


def _ints(array: pa.Array) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


def _epoch(array: pa.Array, loc: Loc) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Epoch numbers as on ingest: above 1e11 milliseconds, else seconds."""
    values = np.asarray(array.to_numpy(zero_copy_only=False))
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise InvalidInput.field(loc, f"row {row}: {_TIME_MSG}")
        scaled = np.where(values > MS_THRESHOLD, values * 1e3, values * 1e6)
        scaled = np.clip(scaled, -1e18, 1e18)
        return np.asarray(np.round(scaled), dtype=np.int64)
    ints = values.astype(np.int64)
    big = ints > MS_THRESHOLD
    ints = np.clip(ints, -(10**12), 10**15)  # beyond the valid range either way: no overflow
    return np.where(big, ints * 1000, ints * 1_000_000)


def _text_times(array: pa.Array, loc: Loc) -> np.ndarray[Any, np.dtype[np.int64]]:
    try:  # all numbers: epoch
        return _epoch(pc.cast(array, pa.float64()), loc)
    except pa.ArrowInvalid:
        pass
    for kind in (TIME, pa.timestamp("us")):  # ISO-8601 with an offset, then naive (UTC)
        try:
            return _ints(pc.cast(array, kind).cast(pa.int64()))
        except pa.ArrowInvalid:
            continue
    out = np.empty(len(array), dtype=np.int64)  # mixed forms: one by one, as on ingest
    for i, text in enumerate(array.to_pylist()):
        us = timestamp_us(text)
        if us is None:
            raise InvalidInput.field(loc, f"row {i}: {_TIME_MSG}")
        out[i] = us
    return out
