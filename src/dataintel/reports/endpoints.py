"""POST /v1/reports/generate and GET /v1/reports/{report_id}: queue a report, then poll it
until it is the file. Authorised like the exports (a report is a downloadable copy of the
project's data): the credential's project, permission export:read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from starlette.convertors import Convertor, register_url_convertor

from dataintel.api.audit import annotate, annotate_project
from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.reports.runner import REPORTS
from dataintel.reports.schemas import REPORT_ID, ReportCreate, ReportRead
from dataintel.reports.service import ReportService, report_url
from dataintel.storage.metadata.audit_repository import append


class _ReportIdConvertor(Convertor[str]):
    """Only a report id matches ``{report_id:report_id}``: GET /v1/reports/generate is then
    a 405 (the path exists, for POST), and a malformed id a 404 like an unknown one."""

    regex = REPORT_ID.strip("^$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("report_id", _ReportIdConvertor())
router = APIRouter(tags=["reports"], route_class=StrictJSONRoute)
ReportScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.EXPORT_READ))]
POLL_AFTER_SECONDS = "1"


@router.post(
    "/v1/reports/generate",
    status_code=202,
    summary="Queue a report (an analysis or an export query, in CSV, JSON, Parquet or PDF)",
    responses={202: {"description": "Queued; poll `url` until it answers with the file."}},
)
def generate_report(
    request: Request,
    scope: ReportScope,
    data: ReportCreate,
    response: Response,
    background: BackgroundTasks,
) -> ReportRead:
    created = ReportService(scope.session).create(scope.project_id, data, scope.principal.subject)
    annotate_project(request, scope.project_id)
    annotate(request, report_id=created.id, kind=data.kind, format=data.format.value)
    response.headers["Location"] = report_url(created.id)
    runner = app_state(request).find(REPORTS)
    if runner is not None:  # after the response: the report is committed by then
        background.add_task(runner.wake)
    return created


@router.get(
    "/v1/reports/{report_id:report_id}",
    summary="A report: its status while queued or running (202), its file when done",
    response_model=None,
    responses={
        200: {
            "description": "The file (Content-Disposition: attachment).",
            "content": {
                "text/csv": {},
                "application/json": {},
                "application/vnd.apache.parquet": {},
                "application/pdf": {},
                "application/zip": {},
            },
        },
        202: {
            "description": "Not ready yet: the status; retry after Retry-After seconds.",
            "model": ReportRead,
        },
        409: {"description": "The report failed: the reason."},
        410: {"description": "The report expired (its file is deleted)."},
    },
)
def get_report(
    scope: ReportScope,
    report_id: Annotated[str, Path(pattern=REPORT_ID, max_length=40)],
) -> FileResponse | JSONResponse:
    found = ReportService(scope.session).download(scope.project_id, report_id)
    if isinstance(found, ReportRead):
        return JSONResponse(
            found.model_dump(mode="json"),
            status_code=202,
            headers={"Retry-After": POLL_AFTER_SECONDS},
        )
    detail = {"report_id": report_id, "file": found.name, "media_type": found.media_type}
    append(
        scope.session, scope.project_id, scope.principal.subject, "download_report", None, detail
    )
    return FileResponse(found.path, media_type=found.media_type, filename=found.name)
