"""SQL of the feature engine: the deployed projects, and the backfill progress rows
(``feature_backfills``) the processor writes as it goes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataintel.features.online.backfill import BackfillProgress
from dataintel.storage.metadata.feature_models import FeatureBackfill
from dataintel.storage.metadata.models import Project
from dataintel.storage.metadata.types import utcnow


def deployed_project_ids(session: Session) -> Sequence[str]:
    """The projects with a deployed config version."""
    return session.scalars(select(Project.id).where(Project.active_version.is_not(None))).all()


def save(session: Session, version: int, progress: BackfillProgress) -> None:
    """Insert or update the row of (project, deployment version)."""
    row = session.get(FeatureBackfill, (progress.project_id, version))
    if row is None:
        row = FeatureBackfill(
            project_id=progress.project_id,
            deployment_version=version,
            state=progress.state,
            fields=list(progress.fields),
        )
        session.add(row)
    row.state = progress.state
    row.fields = list(progress.fields)
    row.events_total = progress.events_total
    row.events_done = progress.events_done
    row.entities = progress.entities
    row.error = progress.error
    row.updated_at = utcnow()
    if progress.state != "running":
        row.finished_at = row.updated_at
