"""Analytics settings payloads: the model's AnalyticsSettings, with its validation."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from dataintel.model.snapshot import AnalyticsSettings


class AnalyticsSettingsReplace(AnalyticsSettings):
    """PUT: the whole settings; an omitted field is reset to its default."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AnalyticsSettingsRead(AnalyticsSettings):
    project_id: str = Field(description="The project these (draft) settings belong to.")
