"""/api/v1/projects: create (global admin), list, get."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from dataintel.api.audit import annotate_project
from dataintel.api.deps import ProjectScope, SessionDep, project_scope, require
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.auth.principal import Principal
from dataintel.config.projects.schemas import ProjectCreate, ProjectRead
from dataintel.config.projects.service import ProjectService

router = APIRouter(prefix="/api/v1/projects", route_class=StrictJSONRoute, tags=["projects"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a project (global admin)")
def create_project(
    request: Request,
    data: ProjectCreate,
    _: Annotated[Principal, Depends(require(Permission.PROJECTS_MANAGE))],
    session: SessionDep,
) -> ProjectRead:
    created = ProjectService(session).create(data)
    annotate_project(request, created.id)  # the project's own trail starts with its creation
    return created


@router.get("", summary="List the projects the caller can see")
def list_projects(
    principal: Annotated[Principal, Depends(require(Permission.PROJECT_READ))],
    session: SessionDep,
) -> list[ProjectRead]:
    return ProjectService(session).list(principal)


@router.get("/{project_id}", summary="Get a project")
def get_project(
    scope: Annotated[ProjectScope, Depends(project_scope(Permission.PROJECT_READ))],
) -> ProjectRead:
    return ProjectRead.model_validate(scope.project)
