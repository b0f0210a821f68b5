"""POST /v1/gdpr/forget/{user_id}, GET /v1/gdpr/status/{request_id}, GET /v1/gdpr/requests
and GET /v1/gdpr/export/{user_id}: compliance officers and admins (``gdpr:manage``)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, BackgroundTasks, Body, Depends, Path, Query, Request, Response

from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.sensitive import SENSITIVE
from dataintel.api.state import ANALYTICS
from dataintel.auth.permissions import Permission
from dataintel.features.serving.service import SERVER
from dataintel.gdpr.export import subject_export
from dataintel.gdpr.runner import GDPR_RUNNER
from dataintel.gdpr.schemas import ForgetCreate, GdprRequestPage, GdprRequestRead, SubjectExport
from dataintel.gdpr.service import GdprService
from dataintel.ingest.resources import INGEST
from dataintel.storage.metadata.audit_repository import append
from dataintel.storage.metadata.gdpr_repository import installation_secret

router = APIRouter(tags=["gdpr"], dependencies=[SENSITIVE])
GdprScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.GDPR_MANAGE))]
UserId = Annotated[str, Path(min_length=1, max_length=256, description="The user's id.")]
RequestId = Annotated[str, Path(max_length=40, pattern=r"^gdpr_[0-9a-f]{32}$")]


def _service(request: Request, scope: ProjectScope) -> GdprService:
    state = app_state(request)
    settings = state.settings
    return GdprService(
        scope.session,
        installation_secret(state.sessions),
        propagation_configured=bool(settings.gdpr_forget_webhook_url or settings.gdpr_forget_topic),
        data_lake=settings.datalake_url is not None,
    )


def _wake(request: Request, project_id: str) -> None:
    """After the commit: this process's runner starts at once, its ingest reloads the list."""
    state = app_state(request)
    runner = state.find(GDPR_RUNNER)
    if runner is not None:
        runner.wake()
    ingest = state.find(INGEST)
    if ingest is not None:
        ingest.suppressions.forget(project_id)


@router.post(
    "/v1/gdpr/forget/{user_id}",
    summary="Forget a user: suppress and/or erase everywhere (202 + request id)",
    status_code=202,
    response_model=GdprRequestRead,
)
def forget(
    request: Request,
    response: Response,
    background: BackgroundTasks,
    scope: GdprScope,
    user_id: UserId,
    body: Annotated[ForgetCreate | None, Body()] = None,
) -> GdprRequestRead:
    kind = (body or ForgetCreate()).type
    created = _service(request, scope).forget(
        scope.project_id, user_id, kind, str(scope.principal.subject)
    )
    response.headers["Location"] = f"/v1/gdpr/status/{created.request_id}"
    background.add_task(_wake, request, scope.project_id)
    return created


@router.get(
    "/v1/gdpr/status/{request_id}",
    summary="A GDPR request's status, overall and per store",
    response_model=GdprRequestRead,
)
def status(request: Request, scope: GdprScope, request_id: RequestId) -> GdprRequestRead:
    return _service(request, scope).status(scope.project_id, request_id)


@router.get(
    "/v1/gdpr/requests",
    summary="The project's GDPR requests, newest first",
    response_model=GdprRequestPage,
)
def requests(
    request: Request,
    scope: GdprScope,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    user_id: Annotated[str | None, Query(max_length=256, description="Only this user's.")] = None,
) -> GdprRequestPage:
    found = _service(request, scope).requests(scope.project_id, limit, user_id)
    return GdprRequestPage(requests=found)


@router.get(
    "/v1/gdpr/export/{user_id}",
    summary="Subject-access export: everything held about a user, as one JSON document",
    response_model=SubjectExport,
)
async def export(request: Request, scope: GdprScope, user_id: UserId) -> SubjectExport:
    state = app_state(request)
    service = await anyio.to_thread.run_sync(_service, request, scope)
    document = await subject_export(
        service, state.port(ANALYTICS), state.port(SERVER), scope.project_id, user_id
    )
    digest = service.subject_hash(scope.project_id, user_id)
    detail = {"subject": digest, "events": len(document.events), "features": len(document.features)}
    actor = str(scope.principal.subject)
    await anyio.to_thread.run_sync(
        append, scope.session, scope.project_id, actor, "gdpr_export", None, detail
    )
    return document
