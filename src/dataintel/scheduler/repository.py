"""Metadata SQL of the scheduler (ADR 0001): slots, claims, leases, outcomes, listings."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dataintel.storage.metadata.job_models import (
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    JobRunRow,
)
from dataintel.storage.metadata.models import Project


@dataclass(frozen=True, slots=True)
class Claim:
    """A run this worker holds: valid while ``fence`` is still the row's."""

    id: int
    job: str
    project_id: str
    slot: datetime
    manual: bool
    params: dict[str, Any]
    fence: int


@dataclass(frozen=True, slots=True)
class RunFilter:
    project_id: str
    job: str | None = None
    status: str | None = None
    after: int | None = None  # id of the last run of the previous page (newest first)
    limit: int = 100


def slot_key(slot: datetime) -> str:
    return slot.isoformat().replace("+00:00", "Z")


def deployed_projects(session: Session) -> Sequence[str]:
    query = select(Project.id).where(Project.active_version.is_not(None)).order_by(Project.id)
    return session.scalars(query).all()


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def ensure_slot(session: Session, job: str, projects: Sequence[str], slot: datetime) -> None:
    """The slot's row for every project (once: the unique key ignores repeats)."""
    if not projects:
        return
    key = slot_key(slot)
    rows = [
        {
            "job": job,
            "project_id": project_id,
            "slot_key": key,
            "slot": slot,
            "manual": False,
            "params": {},
            "status": PENDING,
            "attempts": 0,
            "fence": 0,
        }
        for project_id in projects
    ]
    statement = _insert(session)(JobRunRow).values(rows)
    session.execute(
        statement.on_conflict_do_nothing(index_elements=["job", "project_id", "slot_key"])
    )


def create_manual(
    session: Session, job: str, project_id: str, now: datetime, params: dict[str, Any]
) -> int:
    row = JobRunRow(
        job=job,
        project_id=project_id,
        slot_key=f"m:{uuid.uuid4().hex}",
        slot=now,
        manual=True,
        params=params,
        status=PENDING,
        attempts=0,
        fence=0,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def claimable(session: Session, jobs: Sequence[str], now: datetime, limit: int) -> list[int]:
    """Runs of ``jobs`` nobody holds: pending, or running under a lease that ran out."""
    query = (
        select(JobRunRow.id)
        .where(
            JobRunRow.job.in_(jobs),
            or_(
                JobRunRow.status == PENDING,
                and_(JobRunRow.status == RUNNING, JobRunRow.lease_expires_at < now),
            ),
        )
        .order_by(JobRunRow.id)
        .limit(limit)
    )
    return list(session.scalars(query).all())


def claim(
    session: Session, run_id: int, owner: str, now: datetime, until: datetime
) -> Claim | None:
    """Take the run if it is still free; the claim's fence is one more than any before."""
    taken = session.execute(
        update(JobRunRow)
        .where(
            JobRunRow.id == run_id,
            or_(
                JobRunRow.status == PENDING,
                and_(JobRunRow.status == RUNNING, JobRunRow.lease_expires_at < now),
            ),
        )
        .values(
            status=RUNNING,
            owner=owner,
            lease_expires_at=until,
            fence=JobRunRow.fence + 1,
            attempts=JobRunRow.attempts + 1,
            started_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if int(taken.rowcount) != 1:  # type: ignore[attr-defined]
        return None
    row = session.get(JobRunRow, run_id, populate_existing=True)
    assert row is not None
    return Claim(row.id, row.job, row.project_id, row.slot, row.manual, dict(row.params), row.fence)


def renew(session: Session, claim: Claim, until: datetime) -> bool:
    """Extend the lease; False when the run is no longer this claim's (fenced out)."""
    done = session.execute(
        update(JobRunRow)
        .where(
            JobRunRow.id == claim.id, JobRunRow.fence == claim.fence, JobRunRow.status == RUNNING
        )
        .values(lease_expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount) == 1  # type: ignore[attr-defined]


def finish(
    session: Session,
    claim: Claim,
    now: datetime,
    outcome: dict[str, Any] | None,
    error: str | None,
) -> bool:
    """Record how the run ended, if the claim still holds it; False when fenced out."""
    done = session.execute(
        update(JobRunRow)
        .where(
            JobRunRow.id == claim.id, JobRunRow.fence == claim.fence, JobRunRow.status == RUNNING
        )
        .values(
            status=FAILED if error is not None else FINISHED,
            finished_at=now,
            outcome=outcome,
            error=error,
            owner=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount) == 1  # type: ignore[attr-defined]


def get(session: Session, project_id: str, run_id: int) -> JobRunRow | None:
    row = session.get(JobRunRow, run_id)
    return row if row is not None and row.project_id == project_id else None


def runs(session: Session, f: RunFilter) -> list[JobRunRow]:
    """A project's runs, newest first."""
    query = select(JobRunRow).where(JobRunRow.project_id == f.project_id)
    if f.job is not None:
        query = query.where(JobRunRow.job == f.job)
    if f.status is not None:
        query = query.where(JobRunRow.status == f.status)
    if f.after is not None:
        query = query.where(JobRunRow.id < f.after)
    return list(session.scalars(query.order_by(JobRunRow.id.desc()).limit(f.limit)).all())


def last_runs(session: Session, project_id: str, jobs: Sequence[str]) -> dict[str, JobRunRow]:
    """Per job, the project's most recent run that started."""
    found: dict[str, JobRunRow] = {}
    for job in jobs:
        row = session.scalars(
            select(JobRunRow)
            .where(
                JobRunRow.project_id == project_id,
                JobRunRow.job == job,
                JobRunRow.status != PENDING,
            )
            .order_by(JobRunRow.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            found[job] = row
    return found


def prune(session: Session, before: datetime) -> int:
    """Forget finished and failed runs created before ``before``."""
    gone = session.execute(
        delete(JobRunRow)
        .where(JobRunRow.created_at < before, JobRunRow.status.in_((FINISHED, FAILED)))
        .execution_options(synchronize_session=False)
    )
    return int(gone.rowcount)  # type: ignore[attr-defined]
