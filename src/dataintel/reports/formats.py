"""A report's data → the bytes of its file: CSV, JSON, Parquet (from the Arrow tables) and
PDF (title, parameters, charts, the numbers as text; ``reports.pdf``).

CSV and Parquet hold one table per file: a report of one table is that file, a report of
several is a ZIP holding one file per table (``<table>.csv`` / ``<table>.parquet``).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from dataintel.reports.data import RenderMeta, ReportData


class ReportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    PARQUET = "parquet"
    PDF = "pdf"


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    media_type: str
    extension: str


ZIP = "application/zip"


def render(data: ReportData, meta: RenderMeta, fmt: ReportFormat) -> Rendered:
    if fmt is ReportFormat.JSON:
        return Rendered(json_bytes(data, meta), "application/json", "json")
    if fmt is ReportFormat.PDF:
        from dataintel.reports.pdf import pdf_bytes  # reportlab loads only when needed

        return Rendered(pdf_bytes(data, meta), "application/pdf", "pdf")
    if fmt is ReportFormat.CSV:
        return _one_or_zip(data, "csv", csv_bytes, "text/csv; charset=utf-8")
    return _one_or_zip(data, "parquet", parquet_bytes, "application/vnd.apache.parquet")


def _one_or_zip(data: ReportData, ext: str, write: Any, media_type: str) -> Rendered:
    if len(data.tables) == 1:
        (table,) = data.tables.values()
        return Rendered(write(table), media_type, ext)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, table in data.tables.items():
            archive.writestr(f"{name}.{ext}", write(table))
    return Rendered(buf.getvalue(), ZIP, f"{ext}.zip")


def csv_bytes(table: pa.Table) -> bytes:
    """RFC 4180 CSV with a header; times as ISO-8601 UTC text (``...Z``), like the export."""
    buf = io.BytesIO()
    pacsv.write_csv(_csv_ready(table), buf)
    return buf.getvalue()


def _csv_ready(table: pa.Table) -> pa.Table:
    for index, field in enumerate(table.schema):
        column = table.column(index)
        if pa.types.is_timestamp(field.type):
            text = pc.strftime(
                column.cast(pa.timestamp("us", tz="UTC")), format="%Y-%m-%dT%H:%M:%S"
            )
            text = pc.replace_substring_regex(text, pattern=r"\.0{6}$", replacement="")
            column = pc.binary_join_element_wise(text, pa.scalar("Z"), "")
        elif pa.types.is_nested(field.type):
            column = pa.array(
                [orjson.dumps(v, default=str).decode() for v in column.to_pylist()], pa.string()
            )
        else:
            continue
        table = table.set_column(index, pa.field(field.name, column.type), column)
    return table


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)  # Decimal and any other scalar Arrow hands out


def json_bytes(data: ReportData, meta: RenderMeta) -> bytes:
    body = {
        "report": {
            "id": meta.report_id,
            "kind": meta.kind,
            "title": meta.title,
            "params": dict(meta.params),
            "generated_at": meta.generated_at.astimezone(UTC),
        },
        "tables": {name: _rows(table) for name, table in data.tables.items()},
        "charts": [
            {
                "kind": c.kind,
                "table": c.table,
                "x": c.x,
                "y": c.y,
                "series": c.series,
                "title": c.title,
            }
            for c in data.charts
        ],
    }
    return orjson.dumps(body, default=_json_default, option=orjson.OPT_UTC_Z)


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows
