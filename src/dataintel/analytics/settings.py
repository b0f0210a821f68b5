"""The analytics settings a project has deployed (what every analysis reads).

Read through the deployed-config cache (config/deployments/active.py), never the draft: an
edited setting counts from its deploy on. Nothing deployed yet: the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.model.snapshot import AnalyticsSettings


@dataclass(frozen=True, slots=True)
class DeployedSettings:
    version: int | None  # the deployed config version (None: nothing deployed)
    settings: AnalyticsSettings


def deployed_settings(configs: ActiveConfigCache, project_id: str) -> DeployedSettings:
    active = configs.get(project_id)
    return DeployedSettings(active.version, active.snapshot.analytics)
