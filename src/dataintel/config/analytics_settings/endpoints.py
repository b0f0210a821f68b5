"""/api/v1/projects/{project_id}/analytics-settings: the draft analytics settings.

Like every config edit, a change is pending (it shows in .../deployments/pending) until a
deploy; the analytics plane reads the deployed settings only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from dataintel.api.deps import ProjectScope, project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.auth.permissions import Permission
from dataintel.config.analytics_settings.schemas import (
    AnalyticsSettingsRead,
    AnalyticsSettingsReplace,
)
from dataintel.config.analytics_settings.service import AnalyticsSettingsService

router = APIRouter(
    prefix="/api/v1/projects/{project_id}/analytics-settings",
    route_class=StrictJSONRoute,
    tags=["analytics"],
)
ReadScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(project_scope(Permission.CONFIG_WRITE))]


@router.get("", summary="The draft analytics settings (purchase event, idle time, horizon)")
def get_analytics_settings(scope: ReadScope) -> AnalyticsSettingsRead:
    return AnalyticsSettingsService(scope.session).get(scope.project_id)


@router.put("", summary="Replace the draft analytics settings (omitted fields: defaults)")
def replace_analytics_settings(
    data: AnalyticsSettingsReplace, scope: WriteScope
) -> AnalyticsSettingsRead:
    return AnalyticsSettingsService(scope.session).replace(scope.project_id, data)
