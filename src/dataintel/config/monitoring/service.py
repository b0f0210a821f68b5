"""Read and replace a project's draft monitoring settings (a deploy makes them active)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dataintel.config.deployments.repository import write_monitoring
from dataintel.config.deployments.snapshot_repository import draft_monitoring
from dataintel.config.monitoring.schemas import MonitoringRead, MonitoringReplace
from dataintel.model.monitoring import MonitoringSettings


class MonitoringService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, project_id: str) -> MonitoringRead:
        settings = draft_monitoring(self.session, project_id)
        return MonitoringRead(project_id=project_id, **settings.model_dump())

    def replace(self, project_id: str, data: MonitoringReplace) -> MonitoringRead:
        settings = MonitoringSettings.model_validate(data.model_dump())
        write_monitoring(self.session, project_id, settings)
        return MonitoringRead(project_id=project_id, **settings.model_dump())
