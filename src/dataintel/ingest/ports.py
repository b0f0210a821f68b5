"""What the ingest plane asks of other planes, by port token (provided by the composition root).
Imports nothing heavy, so a worker process that serves no HTTP can name the token cheaply."""

from __future__ import annotations

from typing import Protocol

from dataintel.api.ports import Port


class FeatureBuilds(Protocol):
    """What ``wait=processed`` asks of the feature plane (provided by the composition root)."""

    async def deployed_built(self, project_id: str) -> bool:
        """Is every feature version of the project's active deployment built?"""


FEATURE_BUILDS: Port[FeatureBuilds] = Port(
    "feature-builds", "the online store is not open in this process"
)
