"""Read and replace a project's draft analytics settings; a deploy makes them active."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dataintel.config.analytics_settings.schemas import (
    AnalyticsSettingsRead,
    AnalyticsSettingsReplace,
)
from dataintel.config.deployments.repository import write_analytics
from dataintel.config.deployments.snapshot_repository import draft_analytics
from dataintel.model.snapshot import AnalyticsSettings


class AnalyticsSettingsService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, project_id: str) -> AnalyticsSettingsRead:
        settings = draft_analytics(self.session, project_id)
        return AnalyticsSettingsRead(project_id=project_id, **settings.model_dump())

    def replace(self, project_id: str, data: AnalyticsSettingsReplace) -> AnalyticsSettingsRead:
        settings = AnalyticsSettings.model_validate(data.model_dump())
        write_analytics(self.session, project_id, settings)
        return AnalyticsSettingsRead(project_id=project_id, **settings.model_dump())
