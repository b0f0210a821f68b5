"""POST /v1/export/custom: a declarative query over the project's events (docs/ingest.md),
checked against the deployed config and compiled to the analytics store's SQL. Up to
STREAM_MAX_ROWS rows stream back; a larger ``limit`` queues the export as a report job
(202 + the report, whose url serves the file when done), as does a ``destination`` of type
``s3`` (Parquet files partitioned by date in the service's bucket; the report's file lists
them). Here, in the reports plane,
because a large export is a report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.sensitive import SENSITIVE
from dataintel.api.state import ANALYTICS
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.errors import InvalidInput
from dataintel.export import custom, custom_s3
from dataintel.export.audited import ExportAudit
from dataintel.export.custom_query import Compiled, compile_export
from dataintel.export.custom_schemas import STREAM_MAX_ROWS, CustomExport, S3Destination
from dataintel.export.formats import ExportFormat
from dataintel.reports.formats import ReportFormat
from dataintel.reports.runner import REPORTS
from dataintel.reports.schemas import ReportCreate, ReportRead
from dataintel.reports.service import ReportService, report_url
from dataintel.storage.metadata.audit_repository import append

router = APIRouter(tags=["export"], dependencies=[SENSITIVE])
ExportScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.EXPORT_READ))]
JOB_FORMAT = {
    ExportFormat.NDJSON: ReportFormat.JSON,
    ExportFormat.CSV: ReportFormat.CSV,
    ExportFormat.PARQUET: ReportFormat.PARQUET,
}


@router.post(
    "/v1/export/custom",
    summary="Export the result of a declarative query (rows or aggregates) of the events",
    response_model=None,
    responses={
        200: {
            "description": f"Up to {STREAM_MAX_ROWS:,} rows, streamed.",
            "content": {
                "application/x-ndjson": {},
                "text/csv": {},
                "application/vnd.apache.parquet": {},
            },
        },
        202: {
            "description": "A larger export, or one to S3, queued as a report job.",
            "model": ReportRead,
        },
    },
)
def export_custom(
    request: Request, scope: ExportScope, doc: CustomExport, background: BackgroundTasks
) -> StreamingResponse | JSONResponse:
    state = app_state(request)
    compiled = compile_export(
        doc, scope.project_id, state.port(CONFIGS).get(scope.project_id).snapshot
    )
    actor = scope.principal.subject
    detail = {
        "format": doc.format.value,
        "events": list(doc.events),
        "aggregated": bool(doc.aggregations),
        "limit": doc.limit,
        "destination": doc.destination.type,
    }
    to_s3 = isinstance(doc.destination, S3Destination)
    if to_s3:
        _check_s3(state.settings.datalake_url, compiled)
    if to_s3 or doc.limit > STREAM_MAX_ROWS:
        params = doc.model_dump(mode="json", by_alias=True)
        fmt = ReportFormat.JSON if to_s3 else JOB_FORMAT[doc.format]  # s3: the listing
        job = ReportCreate(kind="custom", params=params, format=fmt)
        created = ReportService(scope.session).create(scope.project_id, job, actor)
        append(
            scope.session,
            scope.project_id,
            actor,
            "export_custom_job",
            None,
            {**detail, "report_id": created.id},
        )
        runner = state.find(REPORTS)
        if runner is not None:  # after the response: the report is committed by then
            background.add_task(runner.wake)
        return JSONResponse(
            created.model_dump(mode="json"),
            status_code=202,
            headers={"Location": report_url(created.id)},
        )
    result = custom.stream(state.port(ANALYTICS), compiled, doc.format)
    audit = ExportAudit(state.sessions, scope.project_id, actor, "export_custom", detail)
    return StreamingResponse(
        iterate_in_threadpool(audit.wrap(result)), media_type=result.media_type
    )


def _check_s3(bucket_url: str | None, compiled: Compiled) -> None:
    """An S3 destination needs the service's bucket (never one named by the caller) and a
    date to partition by."""
    if not bucket_url:
        raise InvalidInput.field(
            ["body", "destination", "type"],
            "no S3 bucket is configured on this service (DATAINTEL_DATALAKE_URL)",
        )
    if custom_s3.date_column(compiled) is None:
        raise InvalidInput.field(
            ["body", "destination"],
            "an S3 export is partitioned by date: export `timestamp` (rows) or set an "
            "`interval` (aggregates)",
        )
