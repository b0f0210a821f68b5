"""SQL of ingest: the stats counters (one upsert per flush) and their read side."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dataintel.storage.metadata.models import DeadLetter, IngestStat

UPSERT_CHUNK = 500  # rows per statement (8 parameters each: far below SQLite's limit)
_KEY = ("project_id", "pipeline_id", "hour", "event")
COUNTERS = ("accepted", "duplicate", "rejected", "suppressed")


def add_counts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add ``rows`` (key columns + counters) to the stored counters, creating missing rows."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for start in range(0, len(rows), UPSERT_CHUNK):
        stmt = insert(IngestStat).values(list(rows[start : start + UPSERT_CHUNK]))
        stmt = stmt.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={c: getattr(IngestStat, c) + getattr(stmt.excluded, c) for c in COUNTERS},
        )
        session.execute(stmt)


def _sums() -> list[Any]:
    return [func.coalesce(func.sum(getattr(IngestStat, c)), 0).label(c) for c in COUNTERS]


def _where(project_id: str, pipeline_id: str | None, since: datetime) -> list[Any]:
    where = [IngestStat.project_id == project_id, IngestStat.hour >= since]
    if pipeline_id is not None:
        where.append(IngestStat.pipeline_id == pipeline_id)
    return where


def counts_by_event(
    session: Session, project_id: str, pipeline_id: str | None, since: datetime
) -> Sequence[Row[Any]]:
    stmt = (
        select(IngestStat.event, *_sums())
        .where(*_where(project_id, pipeline_id, since))
        .group_by(IngestStat.event)
        .order_by(IngestStat.event)
    )
    return session.execute(stmt).all()


def counts_by_hour(
    session: Session, project_id: str, pipeline_id: str | None, since: datetime
) -> Sequence[Row[Any]]:
    stmt = (
        select(IngestStat.hour, *_sums())
        .where(*_where(project_id, pipeline_id, since))
        .group_by(IngestStat.hour)
        .order_by(IngestStat.hour)
    )
    return session.execute(stmt).all()


def dead_letters_by_status(
    session: Session, project_id: str, pipeline_id: str | None
) -> dict[str, int]:
    stmt = select(DeadLetter.status, func.count()).where(DeadLetter.project_id == project_id)
    if pipeline_id is not None:
        stmt = stmt.where(DeadLetter.pipeline_id == pipeline_id)
    rows = session.execute(stmt.group_by(DeadLetter.status)).all()
    return {str(status): int(n) for status, n in rows}
