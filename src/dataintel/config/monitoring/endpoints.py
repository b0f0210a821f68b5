"""/api/v1/projects/{project_id}/monitoring: the draft monitoring settings.

Like every config edit, a change is pending (it shows in .../deployments/pending) until a
deploy; the quality jobs read the deployed settings only (docs/quality.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from dataintel.api.deps import ProjectScope, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.config.monitoring.schemas import MonitoringRead, MonitoringReplace
from dataintel.config.monitoring.service import MonitoringService

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/monitoring",
    route_class=StrictJSONRoute,
    tags=["quality"],
)
ReadScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]


@router.get("", summary="The draft monitoring settings (alert webhook, anomalies, drift)")
def get_monitoring(scope: ReadScope) -> MonitoringRead:
    return MonitoringService(scope.session).get(scope.project_id)


@router.put("", summary="Replace the draft monitoring settings (omitted fields: defaults)")
def replace_monitoring(data: MonitoringReplace, scope: WriteScope) -> MonitoringRead:
    return MonitoringService(scope.session).replace(scope.project_id, data)
