"""SQL for batch feature definitions (always scoped by project)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dataintel.errors import Conflict
from dataintel.model.snapshot import ConfigSnapshot
from dataintel.storage.metadata.batch_models import BatchFeature
from dataintel.storage.metadata.models import Deployment


def get(session: Session, project_id: str, name: str) -> BatchFeature | None:
    return session.get(BatchFeature, (project_id, name))


def list_batch(session: Session, project_id: str) -> Sequence[BatchFeature]:
    stmt = select(BatchFeature).where(BatchFeature.project_id == project_id)
    return session.scalars(stmt.order_by(BatchFeature.name)).all()


def add(session: Session, row: BatchFeature) -> BatchFeature:
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"batch feature '{row.name}' conflicts with a concurrent change") from exc
    return row


def delete(session: Session, row: BatchFeature) -> None:
    session.delete(row)
    session.flush()


def next_version(session: Session, project_id: str, name: str) -> int:
    """One above every version the name has had (draft or deployed), so the values of an
    older definition are never served for a newer one."""
    row = get(session, project_id, name)
    seen = 0 if row is None else row.version
    for snap in session.scalars(
        select(Deployment.snapshot).where(Deployment.project_id == project_id)
    ):
        for b in snap.get("batch", []):
            if b.get("name") == name:
                seen = max(seen, int(b.get("version", 1)))
    return seen + 1


def write_draft(
    session: Session, project_id: str, snapshot: ConfigSnapshot, keep_versions: bool
) -> list[Any]:
    """Upsert the draft batch features to equal ``snapshot.batch``; a changed one gets a new
    version (unless restoring a deployed snapshot). Returns the rows to delete."""
    rows = {r.name: r for r in list_batch(session, project_id)}
    for spec in snapshot.batch:
        attrs = spec.model_dump(mode="json", exclude={"name", "version"})
        row = rows.pop(spec.name, None)
        if row is None:
            version = (
                spec.version if keep_versions else next_version(session, project_id, spec.name)
            )
            session.add(
                BatchFeature(project_id=project_id, name=spec.name, version=version, **attrs)
            )
            continue
        changed = any(getattr(row, k) != v for k, v in attrs.items())
        if changed or (keep_versions and row.version != spec.version):
            version = (
                spec.version if keep_versions else next_version(session, project_id, spec.name)
            )
            for key, value in attrs.items():
                setattr(row, key, value)
            row.version = version
    session.flush()
    return list(rows.values())


def resolve_versions(session: Session, project_id: str, snapshot: ConfigSnapshot) -> ConfigSnapshot:
    """``snapshot`` with each batch feature's version set: the draft's when the definition
    is unchanged, else one above every version the name has had."""
    drafts = {r.name: r for r in list_batch(session, project_id)}
    batch = []
    for spec in snapshot.batch:
        row = drafts.get(spec.name)
        attrs = spec.model_dump(mode="json", exclude={"name", "version"})
        if row is not None and all(getattr(row, k) == v for k, v in attrs.items()):
            batch.append(spec.model_copy(update={"version": row.version}))
        else:
            version = next_version(session, project_id, spec.name)
            batch.append(spec.model_copy(update={"version": version}))
    return snapshot.model_copy(update={"batch": batch})
