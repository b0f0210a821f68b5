"""All metadata SQL of alerts and their notification outbox (ADR 0001)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from dataintel.storage.metadata.monitoring_models import AlertNotification, QualityAlert

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
LIVE = (OPEN, ACKNOWLEDGED)


@dataclass(frozen=True, slots=True)
class AlertFilter:
    project_id: str
    status: str | None = None
    kind: str | None = None
    severity: str | None = None
    since: datetime | None = None  # last seen at or after
    after: int | None = None  # cursor: the id of the last alert of the previous page
    limit: int = 100


def live(session: Session, project_id: str, fingerprint: str) -> QualityAlert | None:
    """The alert of ``fingerprint`` that is open or acknowledged (at most one)."""
    query = (
        select(QualityAlert)
        .where(
            QualityAlert.project_id == project_id,
            QualityAlert.fingerprint == fingerprint,
            QualityAlert.status.in_(LIVE),
        )
        .order_by(QualityAlert.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def last_resolved(session: Session, project_id: str, fingerprint: str) -> datetime | None:
    query = select(func.max(QualityAlert.resolved_at)).where(
        QualityAlert.project_id == project_id,
        QualityAlert.fingerprint == fingerprint,
        QualityAlert.status == RESOLVED,
    )
    return session.scalar(query)


def get(session: Session, project_id: str, alert_id: int) -> QualityAlert | None:
    found = session.get(QualityAlert, alert_id)
    return found if found is not None and found.project_id == project_id else None


def page(session: Session, f: AlertFilter) -> Sequence[QualityAlert]:
    """Newest first (by id), ``limit`` + 1 rows (the extra one says a next page exists)."""
    query = select(QualityAlert).where(QualityAlert.project_id == f.project_id)
    if f.status is not None:
        query = query.where(QualityAlert.status == f.status)
    if f.kind is not None:
        query = query.where(QualityAlert.kind == f.kind)
    if f.severity is not None:
        query = query.where(QualityAlert.severity == f.severity)
    if f.since is not None:
        query = query.where(QualityAlert.last_seen >= f.since)
    if f.after is not None:
        query = query.where(QualityAlert.id < f.after)
    return session.scalars(query.order_by(QualityAlert.id.desc()).limit(f.limit + 1)).all()


def open_counts(session: Session) -> list[tuple[str, str, int]]:
    """(severity, kind, count) of the alerts not resolved, over every project."""
    query = (
        select(QualityAlert.severity, QualityAlert.kind, func.count())
        .where(QualityAlert.status.in_(LIVE))
        .group_by(QualityAlert.severity, QualityAlert.kind)
    )
    return [(s, k, int(n)) for s, k, n in session.execute(query)]


def pending_notifications(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AlertNotification)) or 0)


def claim_notifications(
    session: Session, project_id: str | None, now: datetime, until: datetime, limit: int
) -> list[AlertNotification]:
    """Notifications due and not leased by a live deliverer (of one project, or all), now
    leased until ``until``, oldest first."""
    due = and_(
        AlertNotification.next_attempt_at <= now,
        or_(
            AlertNotification.lease_expires_at.is_(None),
            AlertNotification.lease_expires_at < now,
        ),
    )
    query = select(AlertNotification).where(due)
    if project_id is not None:
        query = query.where(AlertNotification.project_id == project_id)
    query = query.order_by(AlertNotification.id).limit(limit)
    found = list(session.scalars(query.with_for_update(skip_locked=True)))
    for message in found:
        message.lease_expires_at = until
    session.flush()
    return found


def delivered(session: Session, notification_id: int) -> None:
    session.execute(delete(AlertNotification).where(AlertNotification.id == notification_id))


def undelivered(session: Session, notification_id: int, error: str, retry_at: datetime) -> None:
    session.execute(
        update(AlertNotification)
        .where(AlertNotification.id == notification_id)
        .values(
            attempts=AlertNotification.attempts + 1,
            error=error[:2000],
            next_attempt_at=retry_at,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )


def live_fingerprints(session: Session, project_id: str, prefix: str) -> set[str]:
    """Fingerprints starting with ``prefix`` that have an open or acknowledged alert."""
    query = select(QualityAlert.fingerprint).where(
        QualityAlert.project_id == project_id,
        QualityAlert.fingerprint.startswith(prefix, autoescape=True),
        QualityAlert.status.in_(LIVE),
    )
    return set(session.scalars(query).all())
