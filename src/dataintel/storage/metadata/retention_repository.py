"""Metadata SQL of retention shared by the config plane (which shows a project's last run)
and the retention runner (which claims a due project with a lease and records its run)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from dataintel.storage.metadata.models import Project
from dataintel.storage.metadata.retention_models import RetentionStatus

RUNNING, FINISHED, FAILED = "running", "finished", "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: rows, entries or files deleted per store, or why it failed."""

    status: str
    deleted: dict[str, int]
    error: str | None = None
    failed: tuple[str, ...] = ()  # the stores that failed


def status(session: Session, project_id: str) -> RetentionStatus | None:
    return session.get(RetentionStatus, project_id)


def deployed_projects(session: Session) -> Sequence[str]:
    """The projects with a deployed config (the runner reads their policies)."""
    query = select(Project.id).where(Project.active_version.is_not(None)).order_by(Project.id)
    return session.scalars(query).all()


def claim(session: Session, project_id: str, owner: str, now: datetime, until: datetime) -> bool:
    """Take the project's run when no live lease holds it (the scheduler decides when a
    run is due; ``next_run_at`` only shows its next slot)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(RetentionStatus)
        .values(project_id=project_id, next_run_at=now, deleted={})
        .on_conflict_do_nothing(index_elements=["project_id"])
    )
    taken = session.execute(
        update(RetentionStatus)
        .where(
            RetentionStatus.project_id == project_id,
            or_(RetentionStatus.lease_owner.is_(None), RetentionStatus.lease_expires_at < now),
        )
        .values(lease_owner=owner, lease_expires_at=until, status=RUNNING, started_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(taken.rowcount) == 1  # type: ignore[attr-defined]


def renew(session: Session, project_id: str, owner: str, until: datetime) -> None:
    session.execute(
        update(RetentionStatus)
        .where(RetentionStatus.project_id == project_id, RetentionStatus.lease_owner == owner)
        .values(lease_expires_at=until)
        .execution_options(synchronize_session=False)
    )


def finish(
    session: Session,
    project_id: str,
    owner: str,
    outcome: Outcome,
    version: int | None,
    times: tuple[datetime, datetime],
) -> None:
    """Record the run's outcome, release the lease; ``times``: (finished, next run)."""
    finished, next_run = times
    session.execute(
        update(RetentionStatus)
        .where(RetentionStatus.project_id == project_id, RetentionStatus.lease_owner == owner)
        .values(
            lease_owner=None,
            lease_expires_at=None,
            status=outcome.status,
            deleted=outcome.deleted,
            error=outcome.error,
            policy_version=version,
            finished_at=finished,
            next_run_at=next_run,
        )
        .execution_options(synchronize_session=False)
    )
