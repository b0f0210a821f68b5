"""All metadata SQL of the reports plane: the durable queue.

A worker claims the oldest claimable report in one UPDATE whose subquery picks it: on
PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED`` (two workers never pick the same row, and
neither waits for the other); on SQLite the clause is not rendered and the single UPDATE
statement is atomic (SQLite runs one writer at a time). A claim is a lease: the worker
renews it while it runs; a report whose lease ran out (its worker died) is claimable again
until ``attempts`` reaches the maximum, then ``fail_abandoned`` fails it with the reason.
Every later write of a run is conditional on the lease owner, so a worker that lost its
lease can never overwrite the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from dataintel.storage.metadata.report_models import Report

QUEUED, RUNNING, DONE, FAILED, EXPIRED = "queued", "running", "done", "failed", "expired"


def add(session: Session, report: Report) -> Report:
    session.add(report)
    session.flush()
    return report


def get(session: Session, project_id: str, report_id: str) -> Report | None:
    return session.scalar(
        select(Report).where(Report.id == report_id, Report.project_id == project_id)
    )


def _claimable(now: datetime, max_attempts: int) -> ColumnElement[bool]:
    return and_(
        or_(Report.state == QUEUED, and_(Report.state == RUNNING, Report.lease_expires_at < now)),
        Report.attempts < max_attempts,
    )


def _abandoned(now: datetime, max_attempts: int) -> ColumnElement[bool]:
    return and_(
        Report.state == RUNNING, Report.lease_expires_at < now, Report.attempts >= max_attempts
    )


def claim(
    session: Session, owner: str, now: datetime, lease_until: datetime, max_attempts: int
) -> Report | None:
    """Take the oldest queued report, or one whose worker's lease ran out. An idle queue
    costs one read (SQLite: no write lock taken when there is nothing to claim)."""
    exists = select(Report.id).where(_claimable(now, max_attempts)).limit(1)
    if session.scalar(exists) is None:
        return None
    pick = (
        select(Report.id)
        .where(_claimable(now, max_attempts))
        .order_by(Report.created_at, Report.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    taken = session.scalar(
        update(Report)
        .where(Report.id == pick)
        .values(
            state=RUNNING,
            attempts=Report.attempts + 1,
            lease_owner=owner,
            lease_expires_at=lease_until,
            started_at=now,
            error=None,
        )
        .returning(Report.id)
        .execution_options(synchronize_session=False)
    )
    return session.get(Report, taken) if taken is not None else None


def _owned(report_id: str, owner: str) -> ColumnElement[bool]:
    return and_(Report.id == report_id, Report.lease_owner == owner, Report.state == RUNNING)


def renew(session: Session, report_id: str, owner: str, lease_until: datetime) -> bool:
    done = session.execute(
        update(Report)
        .where(_owned(report_id, owner))
        .values(lease_expires_at=lease_until)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Output:
    title: str
    path: str
    name: str
    media_type: str
    size_bytes: int


def finish(
    session: Session, report_id: str, owner: str, out: Output, now: datetime, expires: datetime
) -> bool:
    done = session.execute(
        update(Report)
        .where(_owned(report_id, owner))
        .values(
            state=DONE,
            title=out.title,
            file_path=out.path,
            file_name=out.name,
            media_type=out.media_type,
            size_bytes=out.size_bytes,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            expires_at=expires,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def fail(
    session: Session, report_id: str, owner: str, error: str, now: datetime, expires: datetime
) -> bool:
    done = session.execute(
        update(Report)
        .where(_owned(report_id, owner))
        .values(
            state=FAILED,
            error=error,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            expires_at=expires,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def release(session: Session, report_id: str, owner: str) -> bool:
    """Give a report back to the queue (the worker is stopping): the run does not count."""
    done = session.execute(
        update(Report)
        .where(_owned(report_id, owner))
        .values(
            state=QUEUED,
            attempts=Report.attempts - 1,
            lease_owner=None,
            lease_expires_at=None,
            started_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def fail_abandoned(session: Session, now: datetime, max_attempts: int, expires: datetime) -> int:
    """Fail the reports whose every allowed run was interrupted (lease ran out each time)."""
    if session.scalar(select(Report.id).where(_abandoned(now, max_attempts)).limit(1)) is None:
        return 0
    done = session.execute(
        update(Report)
        .where(_abandoned(now, max_attempts))
        .values(
            state=FAILED,
            error=(
                f"generation was interrupted {max_attempts} times (the worker generating it "
                "stopped or crashed each time); giving up"
            ),
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            expires_at=expires,
        )
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def due_to_expire(session: Session, now: datetime, limit: int = 100) -> Sequence[Report]:
    return session.scalars(
        select(Report)
        .where(Report.expires_at <= now, Report.state.in_((DONE, FAILED)))
        .order_by(Report.expires_at)
        .limit(limit)
    ).all()


def mark_expired(session: Session, report_id: str) -> None:
    session.execute(
        update(Report)
        .where(Report.id == report_id, Report.state.in_((DONE, FAILED)))
        .values(state=EXPIRED, file_path=None)
        .execution_options(synchronize_session=False)
    )
