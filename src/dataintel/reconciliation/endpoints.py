"""GET /v1/reconciliation/reports (filtered, by cursor), GET /v1/reconciliation/reports/{id},
POST /v1/reconciliation/run (202: a manual run of ``reconciliation.daily``). Reports hold a
project's traffic volume: analysts and admins read them (``analytics:read``); a run repairs
stores, so it takes ``config:write`` (developers and admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from dataintel.api.audit import annotate, annotate_project
from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.auth.permissions import Permission
from dataintel.reconciliation import repository as repo
from dataintel.reconciliation.reports import ReportService, trigger
from dataintel.reconciliation.schemas import (
    Day,
    ReconciliationReportPage,
    ReconciliationReportRead,
    ReconciliationRunAccepted,
    ReconciliationRunCreate,
    Status,
)
from dataintel.scheduler.port import JOBS

router = APIRouter(tags=["reconciliation"])
ReadScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.ANALYTICS_READ))]
RunScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.CONFIG_WRITE))]
ReportId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/v1/reconciliation/reports",
    response_model=ReconciliationReportPage,
    summary="The project's reconciliation reports, newest first",
)
def list_reports(
    scope: ReadScope,
    start: Annotated[Day | None, Query(alias="from", description="Days at or after.")] = None,
    end: Annotated[Day | None, Query(alias="to", description="Days at or before.")] = None,
    status: Annotated[Status | None, Query(description="Only this status.")] = None,
    before: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="The `next_before` of the last page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReconciliationReportPage:
    where = repo.ReportFilter(scope.project_id, start, end, status, before, limit)
    return ReportService(scope.session).page(where)


@router.get(
    "/v1/reconciliation/reports/{report_id}",
    response_model=ReconciliationReportRead,
    summary="One reconciliation report",
)
def get_report(scope: ReadScope, report_id: ReportId) -> ReconciliationReportRead:
    return ReportService(scope.session).get(scope.project_id, report_id)


@router.post(
    "/v1/reconciliation/run",
    status_code=202,
    response_model=ReconciliationRunAccepted,
    summary="Run the reconciliation (and its repairs) now (202 + run id)",
)
async def run_now(
    request: Request,
    response: Response,
    scope: RunScope,
    body: Annotated[ReconciliationRunCreate | None, Body()] = None,
) -> ReconciliationRunAccepted:
    jobs = app_state(request).port(JOBS)
    accepted = await trigger(jobs, scope.project_id, body or ReconciliationRunCreate())
    response.headers["Location"] = f"/v1/jobs/runs/{accepted.run_id}"
    annotate_project(request, scope.project_id)
    annotate(request, run_id=accepted.run_id)  # the request's audit entry (api/audit.py)
    return accepted
