"""GET /v1/quality/status, GET /v1/quality/results and POST /v1/quality/validate.

Reading needs ``config:read``; running the rules now (validate without events) needs
``config:write`` as well, since it writes results, and is recorded in the audit trail like
a manual run through /v1/jobs (action ``trigger``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.state import ANALYTICS
from dataintel.api.types import UtcTime
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.errors import Forbidden
from dataintel.ingest.validation import Limits
from dataintel.model.quality import RULE_NAME
from dataintel.quality.jobs import RULES_JOB
from dataintel.quality.schemas import (
    ResultPage,
    RunAccepted,
    StatusRead,
    ValidateReport,
    ValidateRequest,
)
from dataintel.quality.service import QualityService
from dataintel.quality.validate import validate_sample
from dataintel.scheduler.port import JOBS
from dataintel.storage.metadata.audit_repository import append

router = APIRouter(tags=["quality"])
ReadScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.CONFIG_READ))]


@router.get(
    "/v1/quality/status",
    summary="Quality score, last run and failing rules per pipeline, event and feature",
)
def quality_status(request: Request, scope: ReadScope) -> StatusRead:
    configs = app_state(request).port(CONFIGS)
    return QualityService(scope.session).status(scope.project_id, configs)


@router.get("/v1/quality/results", summary="The rules' results as a time series, newest first")
def quality_results(
    scope: ReadScope,
    rule: Annotated[str | None, Query(pattern=RULE_NAME, description="Only this rule's.")] = None,
    status: Annotated[Literal["pass", "fail", "error"] | None, Query()] = None,
    since: Annotated[UtcTime | None, Query(description="Evaluated at or after.")] = None,
    cursor: Annotated[
        str | None, Query(max_length=20, description="next_cursor of a page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ResultPage:
    when: datetime | None = since
    return QualityService(scope.session).results(
        scope.project_id, rule, status, when, cursor, limit
    )


@router.post(
    "/v1/quality/validate",
    summary="Run the rules now (no events: 202 + run id) or validate a sample of events",
    response_model=ValidateReport,
    responses={202: {"model": RunAccepted, "description": "The run is queued."}},
)
async def quality_validate(
    request: Request, scope: ReadScope, body: ValidateRequest
) -> Response | ValidateReport:
    state = app_state(request)
    if body.events is None:
        if not scope.principal.can(Permission.CONFIG_WRITE):
            raise Forbidden(f"running the rules needs the '{Permission.CONFIG_WRITE}' permission")
        params = body.model_dump(mode="json", include={"window_seconds", "end"}, exclude_none=True)
        run_id = await state.port(JOBS).trigger(RULES_JOB, scope.project_id, params)
        detail = {"job": RULES_JOB, "run_id": run_id, **params}
        who = str(scope.principal.subject)
        await anyio.to_thread.run_sync(
            append, scope.session, scope.project_id, who, "trigger", RULES_JOB, detail
        )
        headers = {"Location": f"/v1/jobs/runs/{run_id}"}
        return JSONResponse(
            RunAccepted(run_id=run_id).model_dump(), status_code=202, headers=headers
        )
    settings = state.settings
    limits = Limits(
        future_skew_us=settings.ingest_max_future_skew_seconds * 1_000_000,
        lateness_us=settings.ingest_allowed_lateness_seconds * 1_000_000,
    )
    config = await state.port(CONFIGS).aget(scope.project_id)
    return await anyio.to_thread.run_sync(
        validate_sample, state.port(ANALYTICS), config, body.pipeline, body.events, limits
    )
