"""/api/v1/projects/{project_id}/deployments: history, pending diff, deploy, rollback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, status

from dataintel.api.audit import annotate
from dataintel.api.deps import ProjectScope, app_state, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.api.types import NonNegInt32, Version32
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.config.deployments.schemas import (
    DeploymentCreate,
    DeploymentDetail,
    DeploymentPage,
    DeploymentRollback,
    PendingRead,
)
from dataintel.config.deployments.service import DeploymentService

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/deployments",
    route_class=StrictJSONRoute,
    tags=["deployments"],
)
ConfigReader = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_READ))]
Deployer = Annotated[ProjectScope, Depends(project_scope(Permission.DEPLOY))]
Version = Annotated[Version32, Path(description="A deployed config version.")]


def _service(request: Request, scope: ProjectScope) -> DeploymentService:
    return DeploymentService(scope.session, app_state(request).port(CONFIGS))


@router.get("", summary="List deployed versions, newest first")
def list_deployments(
    request: Request,
    scope: ConfigReader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[NonNegInt32, Query()] = 0,
) -> DeploymentPage:
    return _service(request, scope).list(scope.project, limit, offset)


@router.get("/pending", summary="Undeployed changes: diff of the active version to the draft")
def pending_changes(request: Request, scope: ConfigReader) -> PendingRead:
    return _service(request, scope).pending(scope.project)


@router.get("/{version}", summary="One deployed version with its full config snapshot")
def get_deployment(request: Request, scope: ConfigReader, version: Version) -> DeploymentDetail:
    return _service(request, scope).get(scope.project, version)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Deploy the draft as a new immutable version and make it active",
    responses={409: {"description": "Nothing to deploy, or a concurrent deployment."}},
)
def deploy(
    request: Request,
    scope: Deployer,
    data: Annotated[DeploymentCreate | None, Body()] = None,
) -> DeploymentDetail:
    message = data.message if data is not None else ""
    detail = _service(request, scope).deploy(scope.project, message, scope.principal.subject)
    annotate(request, version=detail.version)
    return detail


@router.post(
    "/{version}/rollback",
    status_code=status.HTTP_201_CREATED,
    summary="Re-activate an earlier version (recorded as a new version)",
    responses={409: {"description": "Undeployed draft changes (see force), or no difference."}},
)
def rollback(
    request: Request,
    scope: Deployer,
    version: Version,
    data: Annotated[DeploymentRollback | None, Body()] = None,
) -> DeploymentDetail:
    data = data or DeploymentRollback()
    detail = _service(request, scope).rollback(
        scope.project, version, scope.principal.subject, data.message, data.force
    )
    annotate(request, version=detail.version, rollback_of=detail.rollback_of)
    return detail
