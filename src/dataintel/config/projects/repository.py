"""SQL for projects."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataintel.storage.metadata.models import Project


def get(session: Session, project_id: str) -> Project | None:
    return session.get(Project, project_id)


def add(session: Session, project: Project) -> Project:
    session.add(project)
    session.flush()
    return project


def list_visible(session: Session, projects: frozenset[str] | None) -> Sequence[Project]:
    stmt = select(Project).order_by(Project.id)
    if projects is not None:
        stmt = stmt.where(Project.id.in_(projects))
    return session.scalars(stmt).all()
