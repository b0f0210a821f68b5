"""SQL for dead letters (always scoped by project and pipeline)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from dataintel.storage.metadata.models import DeadLetter


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    statuses: Sequence[str] = ()
    event: str | None = None
    reason: str | None = None  # a reason code
    since: datetime | None = None  # received_at, inclusive
    until: datetime | None = None  # received_at, exclusive
    ids: Sequence[int] = ()


def add_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert dead letters in one statement (executemany) and flush them into the unit of
    work."""
    if rows:
        session.execute(insert(DeadLetter), list(rows))


def _filtered(project_id: str, pipeline_id: str, f: DeadLetterFilter) -> Select[DeadLetter]:
    stmt = select(DeadLetter).where(
        DeadLetter.project_id == project_id, DeadLetter.pipeline_id == pipeline_id
    )
    if f.statuses:
        stmt = stmt.where(DeadLetter.status.in_(list(f.statuses)))
    if f.event is not None:
        stmt = stmt.where(DeadLetter.event == f.event)
    if f.reason is not None:
        stmt = stmt.where(DeadLetter.reason_codes.contains(f",{f.reason},", autoescape=True))
    if f.since is not None:
        stmt = stmt.where(DeadLetter.received_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(DeadLetter.received_at < f.until)
    if f.ids:
        stmt = stmt.where(DeadLetter.id.in_(list(f.ids)))
    return stmt


def page(
    session: Session,
    project_id: str,
    pipeline_id: str,
    f: DeadLetterFilter,
    before_id: int | None,
    limit: int,
) -> Sequence[DeadLetter]:
    """Newest first (by id); ``limit + 1`` rows so the caller knows whether more follow."""
    stmt = _filtered(project_id, pipeline_id, f)
    if before_id is not None:
        stmt = stmt.where(DeadLetter.id < before_id)
    return session.scalars(stmt.order_by(DeadLetter.id.desc()).limit(limit + 1)).all()


def oldest_first(
    session: Session, project_id: str, pipeline_id: str, f: DeadLetterFilter, limit: int
) -> Sequence[DeadLetter]:
    """For replay: in arrival order, ``limit + 1`` rows, locked against a concurrent replay
    (PostgreSQL; SQLite serialises writers anyway)."""
    stmt = _filtered(project_id, pipeline_id, f).order_by(DeadLetter.id).limit(limit + 1)
    return session.scalars(stmt.with_for_update()).all()


def flush(session: Session) -> None:
    session.flush()
