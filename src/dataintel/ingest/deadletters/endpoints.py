"""/api/v1/projects/{project_id}/pipelines/{pipeline_id}/dead-letters: list and replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request

from dataintel.api.deps import ProjectScope, app_state, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.api.state import EVENTLOG
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.ingest.deadletters.repository import DeadLetterFilter
from dataintel.ingest.deadletters.schemas import (
    DeadLetterPage,
    DeadLetterReplay,
    DeadLetterStatus,
    IsoTime,
    ReplayRead,
)
from dataintel.ingest.deadletters.service import DeadLetterService
from dataintel.ingest.resources import ingest_runtime
from dataintel.ingest.schemas import ReasonCode
from dataintel.model.fields import EVENT_NAME, SLUG

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/pipelines/{pipeline_id}/dead-letters",
    route_class=StrictJSONRoute,
    tags=["dead-letters"],
)
ReadScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]
PipelineId = Annotated[str, Path(pattern=SLUG, max_length=64)]


def _service(request: Request, scope: ProjectScope) -> DeadLetterService:
    state = app_state(request)
    return DeadLetterService(
        scope.session, state.port(CONFIGS), ingest_runtime(request), state.port(EVENTLOG)
    )


@router.get("", summary="List rejected events with their reasons, newest first")
def list_dead_letters(
    request: Request,
    scope: ReadScope,
    pipeline_id: PipelineId,
    status: DeadLetterStatus | None = None,
    event: Annotated[str | None, Query(pattern=EVENT_NAME, max_length=128)] = None,
    reason: Annotated[ReasonCode | None, Query(description="A reason code.")] = None,
    since: Annotated[IsoTime | None, Query(description="received_at >= since")] = None,
    until: Annotated[IsoTime | None, Query(description="received_at < until")] = None,
    cursor: Annotated[
        str | None,
        Query(max_length=10, pattern=r"^[0-9]+$", description="next_cursor of the last page."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeadLetterPage:
    where = DeadLetterFilter(
        statuses=[status] if status else [], event=event, reason=reason, since=since, until=until
    )
    return _service(request, scope).list(scope.project_id, pipeline_id, where, cursor, limit)


@router.post(
    "/replay",
    summary="Re-validate dead letters against the deployed version; append the valid ones",
    responses={503: {"description": "The event log is unavailable; retry."}},
)
def replay_dead_letters(
    request: Request,
    scope: WriteScope,
    pipeline_id: PipelineId,
    data: Annotated[DeadLetterReplay | None, Body()] = None,
) -> ReplayRead:
    return _service(request, scope).replay(
        scope.project_id, pipeline_id, data or DeadLetterReplay()
    )
