"""Metadata SQL of the retention runner: old dead letters, and reports to expire."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dataintel.storage.metadata.models import DeadLetter
from dataintel.storage.metadata.report_models import Report

FINISHED_REPORTS = ("done", "failed")  # queued and running ones are being made


def delete_dead_letters(session: Session, project_id: str, before: datetime) -> int:
    """The project's dead letters received before ``before`` go."""
    done = session.execute(
        delete(DeadLetter).where(
            DeadLetter.project_id == project_id, DeadLetter.received_at < before
        )
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def reports_to_expire(session: Session, project_id: str, before: datetime) -> Sequence[Report]:
    """The project's finished reports created before ``before``."""
    return session.scalars(
        select(Report).where(
            Report.project_id == project_id,
            Report.created_at < before,
            Report.state.in_(FINISHED_REPORTS),
        )
    ).all()
