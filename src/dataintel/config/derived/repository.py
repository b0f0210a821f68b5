"""SQL for derived features (always scoped by project)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dataintel.errors import Conflict
from dataintel.storage.metadata.feature_models import DerivedFeature
from dataintel.storage.metadata.models import Deployment


def get(session: Session, project_id: str, name: str) -> DerivedFeature | None:
    return session.get(DerivedFeature, (project_id, name))


def list_derived(session: Session, project_id: str) -> Sequence[DerivedFeature]:
    stmt = select(DerivedFeature).where(DerivedFeature.project_id == project_id)
    return session.scalars(stmt.order_by(DerivedFeature.name)).all()


def add(session: Session, row: DerivedFeature) -> DerivedFeature:
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"derived feature '{row.name}' conflicts with a concurrent change") from exc
    return row


def delete(session: Session, row: DerivedFeature) -> None:
    session.delete(row)
    session.flush()


def next_version(session: Session, project_id: str, name: str) -> int:
    """One above every version the name has had (draft or deployed)."""
    seen = 0
    row = get(session, project_id, name)
    if row is not None:
        seen = row.version
    for snap in session.scalars(
        select(Deployment.snapshot).where(Deployment.project_id == project_id)
    ):
        for d in snap.get("derived", []):
            if d.get("name") == name:
                seen = max(seen, int(d.get("version", 1)))
    return seen + 1
