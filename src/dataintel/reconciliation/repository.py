"""Metadata SQL of reconciliation (ADR 0001): reports, and what may hold a repair back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataintel.storage.metadata.gdpr_models import GdprRequest
from dataintel.storage.metadata.reconciliation_models import ReconciliationReport

# A GDPR request in these states may have erased a subject from the analytics store and not
# yet (or never) from the log: its events must not be put back (docs/reconciliation.md).
UNSETTLED_GDPR = ("pending", "running", "failed")
ERASING = ("SUPPRESS_WITH_DELETE", "DELETE_ONLY")  # the request types that erase


@dataclass(frozen=True, slots=True)
class ReportFilter:
    project_id: str
    start: date | None = None  # inclusive
    end: date | None = None  # inclusive
    status: str | None = None
    before: int | None = None  # cursor: the id of the last report of the previous page
    limit: int = 100


def save(session: Session, project_id: str, day: date, run_id: int, **values: Any) -> int:
    """The report of (project, day, run): written once per run, replaced when the same run
    is run again (a run is idempotent per slot)."""
    query = select(ReconciliationReport).where(
        ReconciliationReport.project_id == project_id,
        ReconciliationReport.day == day,
        ReconciliationReport.run_id == run_id,
    )
    report = session.scalars(query).first()
    if report is None:
        report = ReconciliationReport(project_id=project_id, day=day, run_id=run_id)
        session.add(report)
    for name, value in values.items():
        setattr(report, name, value)
    session.flush()
    return report.id


def page(session: Session, where: ReportFilter) -> Sequence[ReconciliationReport]:
    """Newest first (by id), ``limit`` of them."""
    query = select(ReconciliationReport).where(ReconciliationReport.project_id == where.project_id)
    if where.start is not None:
        query = query.where(ReconciliationReport.day >= where.start)
    if where.end is not None:
        query = query.where(ReconciliationReport.day <= where.end)
    if where.status is not None:
        query = query.where(ReconciliationReport.status == where.status)
    if where.before is not None:
        query = query.where(ReconciliationReport.id < where.before)
    query = query.order_by(ReconciliationReport.id.desc()).limit(where.limit)
    return session.scalars(query).all()


def get(session: Session, project_id: str, report_id: int) -> ReconciliationReport | None:
    report = session.get(ReconciliationReport, report_id)
    return report if report is not None and report.project_id == project_id else None


def unsettled_erasures(session: Session, project_id: str) -> int:
    """GDPR requests of the project that may have left events in the log the stores erased."""
    query = select(GdprRequest.id).where(
        GdprRequest.project_id == project_id,
        GdprRequest.status.in_(UNSETTLED_GDPR),
        GdprRequest.kind.in_(ERASING),
    )
    return len(session.scalars(query).all())
