"""Monitoring payloads: the model's MonitoringSettings with its validation."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from dataintel.model.monitoring import MonitoringSettings


class MonitoringReplace(MonitoringSettings):
    """PUT: the whole section; an omitted field is reset to its default."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class MonitoringRead(MonitoringSettings):
    project_id: str = Field(description="The project these (draft) settings belong to.")
