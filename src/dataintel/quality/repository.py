"""Metadata SQL of the quality plane: the results time series and the dead-letter counts the
schema rule reads (ADR 0001: all metadata SQL in repository modules)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dataintel.storage.metadata.models import DeadLetter
from dataintel.storage.metadata.quality_models import QualityResult


def dead_letters(
    session: Session,
    project_id: str,
    window: tuple[datetime, datetime],
    event: str | None,
    pipeline: str | None,
) -> int:
    """Dead letters of a project that arrived in ``window`` (of one event / pipeline)."""
    query = select(func.count()).where(
        DeadLetter.project_id == project_id,
        DeadLetter.received_at >= window[0],
        DeadLetter.received_at < window[1],
    )
    if event is not None:
        query = query.where(DeadLetter.event == event)
    if pipeline is not None:
        query = query.where(DeadLetter.pipeline_id == pipeline)
    return int(session.scalar(query) or 0)


def replace_slot(
    session: Session, project_id: str, slot: datetime, rows: Sequence[QualityResult]
) -> None:
    """Store a run's results; a run of the same slot before (a retried run) is replaced."""
    session.execute(
        delete(QualityResult).where(
            QualityResult.project_id == project_id, QualityResult.slot == slot
        )
    )
    session.add_all(rows)
    session.flush()


def results(
    session: Session,
    project_id: str,
    rule: str | None,
    status: str | None,
    since: datetime | None,
    before_id: int | None,
    limit: int,
) -> Sequence[QualityResult]:
    """Newest first (by id: runs are stored in order), at most ``limit``."""
    query = select(QualityResult).where(QualityResult.project_id == project_id)
    if rule is not None:
        query = query.where(QualityResult.rule == rule)
    if status is not None:
        query = query.where(QualityResult.status == status)
    if since is not None:
        query = query.where(QualityResult.evaluated_at >= since)
    if before_id is not None:
        query = query.where(QualityResult.id < before_id)
    return session.scalars(query.order_by(QualityResult.id.desc()).limit(limit)).all()


def latest(session: Session, project_id: str) -> Sequence[QualityResult]:
    """The latest result of every rule of the project: that of its newest slot (a slot run
    again later, e.g. after a crash, does not hide a newer one)."""
    newest = (
        select(QualityResult.rule, func.max(QualityResult.slot).label("slot"))
        .where(QualityResult.project_id == project_id)
        .group_by(QualityResult.rule)
        .subquery()
    )
    query = (
        select(QualityResult)
        .join(
            newest,
            (QualityResult.rule == newest.c.rule) & (QualityResult.slot == newest.c.slot),
        )
        .where(QualityResult.project_id == project_id)
        .order_by(QualityResult.rule)
    )
    return session.scalars(query).all()
