"""The report kind ``custom``: a custom export document (POST /v1/export/custom) run as a
job, its rows as one table."""

from __future__ import annotations

import pyarrow as pa

from dataintel.errors import InvalidInput
from dataintel.export import custom_s3
from dataintel.export.custom import batches
from dataintel.export.custom_query import Compiled, compile_export
from dataintel.export.custom_schemas import CustomExport, S3Destination
from dataintel.reports.data import ReportContext, ReportData
from dataintel.reports.errors import ReportError

__all__ = ["CustomExport", "custom_report"]
FILES = pa.schema(
    [("key", pa.string()), ("date", pa.string()), ("rows", pa.int64()), ("url", pa.string())]
)


def custom_report(ctx: ReportContext, doc: CustomExport) -> ReportData:
    snapshot = ctx.configs.get(ctx.project_id).snapshot
    try:  # checked when queued; the deployed config may have changed since
        compiled = compile_export(doc, ctx.project_id, snapshot)
    except InvalidInput as exc:
        raise ReportError(f"the export no longer fits the deployed config: {exc}") from exc
    table = pa.Table.from_batches(list(batches(ctx.analytics, compiled)), compiled.schema)
    if isinstance(doc.destination, S3Destination):
        return _to_s3(ctx, doc, doc.destination, compiled, table)
    return ReportData("Custom export", {"rows": table})


def _to_s3(
    ctx: ReportContext,
    doc: CustomExport,
    destination: S3Destination,
    compiled: Compiled,
    table: pa.Table,
) -> ReportData:
    """The rows as Parquet files in the bucket; the report's own file lists them."""
    column = custom_s3.date_column(compiled)
    if ctx.blobs is None or column is None:
        raise ReportError("an S3 export needs a configured bucket and a date column")
    base = custom_s3.base_key(ctx.project_id, destination, ctx.report_id)
    files = custom_s3.write(ctx.blobs, base, table, column, doc)
    listing = pa.Table.from_pylist(
        [{**f, "url": f"{ctx.blobs.url}/{f['key']}"} for f in files], schema=FILES
    )
    audit = {
        "report_id": ctx.report_id,
        "destination": "s3",
        "rows": table.num_rows,
        "files": len(files),
        "events": list(doc.events),
    }
    return ReportData("Custom export to S3", {"files": listing}, audit=audit)
