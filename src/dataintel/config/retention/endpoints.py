"""/api/v1/projects/{project_id}/retention: the draft retention policy, and its runs.

Like every config edit, a change is pending (it shows in .../deployments/pending) until a
deploy; the retention runner applies the deployed policy only (docs/compliance.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from dataintel.api.deps import ProjectScope, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.config.retention.schemas import RetentionRead, RetentionReplace, RetentionRunRead
from dataintel.config.retention.service import RetentionService

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/retention",
    route_class=StrictJSONRoute,
    tags=["retention"],
)
ReadScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]


@router.get("", summary="The draft retention policy (days per store and per event)")
def get_retention(scope: ReadScope) -> RetentionRead:
    return RetentionService(scope.session).get(scope.project_id)


@router.put("", summary="Replace the draft retention policy (omitted fields: keep forever)")
def replace_retention(data: RetentionReplace, scope: WriteScope) -> RetentionRead:
    return RetentionService(scope.session).replace(scope.project_id, data)


@router.get("/runs", summary="The deployed retention policy and its last run")
def get_retention_runs(scope: ReadScope) -> RetentionRunRead:
    return RetentionService(scope.session).runs(scope.project_id)
