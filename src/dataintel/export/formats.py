"""Arrow record batches → bytes, one chunk per batch, for NDJSON, CSV and Parquet."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import UTC
from enum import StrEnum
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


class ExportFormat(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"
    PARQUET = "parquet"


MEDIA_TYPES = {
    ExportFormat.NDJSON: "application/x-ndjson",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}
ACCEPT = {
    "application/x-ndjson": ExportFormat.NDJSON,
    "application/jsonl": ExportFormat.NDJSON,
    "text/csv": ExportFormat.CSV,
    "application/vnd.apache.parquet": ExportFormat.PARQUET,
    "application/x-parquet": ExportFormat.PARQUET,
}


def from_accept(accept: str | None) -> ExportFormat | None:
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in ACCEPT:
            return ACCEPT[media]
    return None


def _iso(value: Any) -> Any:
    """ISO-8601 UTC with a ``Z``, microseconds only when non-zero: what the API's JSON
    (pydantic) writes for a datetime everywhere else."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else value


def ndjson(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """One JSON object per row; timestamps as the API writes them, ``properties`` (JSON
    text) inlined as an object."""
    for batch in batches:
        times = [f.name for f in batch.schema if pa.types.is_timestamp(f.type)]
        raw = "properties" in batch.schema.names
        lines = []
        for row in batch.to_pylist():
            for name in times:
                row[name] = _iso(row[name])
            if raw:
                row["properties"] = orjson.Fragment(row["properties"] or "{}")
            lines.append(orjson.dumps(row))
        if lines:
            yield b"\n".join(lines) + b"\n"


def csv(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    first = True
    for batch in batches:
        buf = io.BytesIO()
        options = pacsv.WriteOptions(include_header=first)
        pacsv.write_csv(_utc_strings(batch), buf, write_options=options)
        first = False
        yield buf.getvalue()


def _utc_strings(batch: pa.RecordBatch) -> pa.RecordBatch:
    columns = [
        _iso_column(col) if pa.types.is_timestamp(col.type) else col for col in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _iso_column(col: pa.Array) -> pa.Array:
    """The same text as ``_iso`` for a whole column, vectorised. Arrow's ``%S`` already
    carries the fraction (six digits for microsecond timestamps; there is no ``%f``)."""
    text = pc.strftime(col.cast(pa.timestamp("us", tz="UTC")), format="%Y-%m-%dT%H:%M:%S")
    text = pc.replace_substring_regex(text, pattern=r"\.0{6}$", replacement="")
    return pc.binary_join_element_wise(text, pa.scalar("Z"), "")


class _Chunks(io.RawIOBase):
    """A write-only file that hands what was written to the caller chunk by chunk."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def parquet(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
    sink = _Chunks()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch)
            chunk = sink.take()
            if chunk:
                yield chunk
    yield sink.take()


def encode(
    batches: Iterable[pa.RecordBatch], fmt: ExportFormat, schema: pa.Schema
) -> Iterator[bytes]:
    """``batches`` (of ``schema``: Parquet writes it even when there are none) as ``fmt``."""
    if fmt is ExportFormat.CSV:
        return csv(batches)
    if fmt is ExportFormat.PARQUET:
        return parquet(batches, schema)
    return ndjson(batches)
