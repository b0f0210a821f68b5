"""SQL shared by the cross-cutting HTTP helpers (api/): lookups every plane's scope check needs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataintel.storage.metadata.models import Project


def project_exists(session: Session, project_id: str) -> bool:
    return session.scalar(select(Project.id).where(Project.id == project_id)) is not None
