"""SQL for API keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataintel.storage.metadata.models import ApiKey


def get_key(session: Session, key_id: str) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def add_key(session: Session, key: ApiKey) -> ApiKey:
    session.add(key)
    session.flush()
    return key


def list_keys(
    session: Session,
    projects: frozenset[str] | None,
    project_id: str | None,
    include_revoked: bool,
) -> Sequence[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if projects is not None:
        stmt = stmt.where(ApiKey.project_id.in_(projects))
    if project_id is not None:
        stmt = stmt.where(ApiKey.project_id == project_id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return session.scalars(stmt).all()


def revoke(key: ApiKey, when: datetime) -> None:
    if key.revoked_at is None:
        key.revoked_at = when


def keys_named(session: Session, name: str, project_id: str | None) -> Sequence[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
    stmt = stmt.where(
        ApiKey.project_id.is_(None) if project_id is None else ApiKey.project_id == project_id
    )
    return session.scalars(stmt).all()


def has_global_admin(session: Session) -> bool:
    stmt = select(ApiKey).where(ApiKey.project_id.is_(None), ApiKey.revoked_at.is_(None))
    return any("admin" in k.roles for k in session.scalars(stmt))
