"""SQL of batch feature runs (``batch_feature_runs``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dataintel.storage.metadata.batch_models import BatchFeatureRun
from dataintel.storage.metadata.types import utcnow


def last_runs(session: Session, project_id: str) -> dict[tuple[str, int], datetime]:
    """(feature, version) -> the time of its latest run."""
    rows = session.execute(
        select(
            BatchFeatureRun.feature, BatchFeatureRun.version, func.max(BatchFeatureRun.computed_at)
        )
        .where(BatchFeatureRun.project_id == project_id)
        .group_by(BatchFeatureRun.feature, BatchFeatureRun.version)
    ).all()
    return {(str(f), int(v)): at for f, v, at in rows}


def record_run(
    session: Session, project_id: str, feature: str, version: int, at: datetime, entities: int
) -> None:
    """Insert or update the run of (feature, version) at ``at`` (a re-run of a slot)."""
    row = session.get(BatchFeatureRun, (project_id, feature, version, at))
    if row is None:
        session.add(
            BatchFeatureRun(
                project_id=project_id,
                feature=feature,
                version=version,
                computed_at=at,
                entities=entities,
            )
        )
    else:
        row.entities = entities
        row.finished_at = utcnow()
    session.flush()


def run_times(session: Session, project_id: str, feature: str, version: int) -> list[datetime]:
    """Every run of (feature, version), oldest first."""
    stmt = (
        select(BatchFeatureRun.computed_at)
        .where(
            BatchFeatureRun.project_id == project_id,
            BatchFeatureRun.feature == feature,
            BatchFeatureRun.version == version,
        )
        .order_by(BatchFeatureRun.computed_at)
    )
    return list(session.scalars(stmt).all())
