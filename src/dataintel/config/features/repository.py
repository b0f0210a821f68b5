"""SQL for feature definitions (always scoped by project)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dataintel.errors import Conflict
from dataintel.storage.metadata.models import Feature


def get(session: Session, project_id: str, name: str) -> Feature | None:
    return session.get(Feature, (project_id, name))


def list_features(
    session: Session,
    project_id: str,
    pipeline_id: str | None = None,
    source_event: str | None = None,
) -> Sequence[Feature]:
    """Features of the project, optionally only those reading a pipeline (and one event)."""
    stmt = select(Feature).where(Feature.project_id == project_id)
    if pipeline_id is not None:
        stmt = stmt.where(Feature.pipeline_id == pipeline_id)
    if source_event is not None:
        stmt = stmt.where(Feature.source_event == source_event)
    return session.scalars(stmt.order_by(Feature.name)).all()


def add(session: Session, feature: Feature) -> Feature:
    session.add(feature)
    try:
        session.flush()
    except IntegrityError as exc:  # the request's unit of work rolls back
        raise Conflict(f"feature '{feature.name}' conflicts with a concurrent change") from exc
    return feature


def delete(session: Session, feature: Feature) -> None:
    session.delete(feature)
    session.flush()
