"""The report kind ``custom``: a custom export document (POST /v1/export/custom) run as a
job, its rows as one table."""

from __future__ import annotations

import pyarrow as pa

from dataintel.errors import InvalidInput
from dataintel.export.custom import batches
from dataintel.export.custom_query import compile_export
from dataintel.export.custom_schemas import CustomExport
from dataintel.reports.data import ReportContext, ReportData
from dataintel.reports.errors import ReportError

__all__ = ["CustomExport", "custom_report"]


def custom_report(ctx: ReportContext, doc: CustomExport) -> ReportData:
    snapshot = ctx.configs.get(ctx.project_id).snapshot
    try:  # checked when queued; the deployed config may have changed since
        compiled = compile_export(doc, ctx.project_id, snapshot)
    except InvalidInput as exc:
        raise ReportError(f"the export no longer fits the deployed config: {exc}") from exc
    table = pa.Table.from_batches(list(batches(ctx.analytics, compiled)), compiled.schema)
    return ReportData("Custom export", {"rows": table})
