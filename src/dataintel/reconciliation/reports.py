"""The HTTP side of reconciliation: reading a project's reports, and triggering a run."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from dataintel.errors import InvalidInput, NotFound, Unavailable
from dataintel.model.jobs import JobTrigger
from dataintel.reconciliation import repository as repo
from dataintel.reconciliation.jobs import DAILY
from dataintel.reconciliation.schemas import (
    ReconciliationReportPage,
    ReconciliationReportRead,
    ReconciliationRunAccepted,
    ReconciliationRunCreate,
)
from dataintel.storage.metadata.reconciliation_models import ReconciliationReport


def _read(report: ReconciliationReport) -> ReconciliationReportRead:
    return ReconciliationReportRead.model_validate(report, from_attributes=True)


class ReportService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def page(self, where: repo.ReportFilter) -> ReconciliationReportPage:
        if where.start is not None and where.end is not None and where.start > where.end:
            raise InvalidInput.field(["query", "from"], "must not be after 'to'")
        found = repo.page(self.session, where)
        last = found[-1].id if len(found) == where.limit else None
        return ReconciliationReportPage(reports=[_read(r) for r in found], next_before=last)

    def get(self, project_id: str, report_id: int) -> ReconciliationReportRead:
        found = repo.get(self.session, project_id, report_id)
        if found is None:
            raise NotFound(f"reconciliation report {report_id} not found")
        return _read(found)


async def trigger(
    jobs: JobTrigger, project_id: str, body: ReconciliationRunCreate
) -> ReconciliationRunAccepted:
    days: list[date] | None = body.days
    params = {"days": [d.isoformat() for d in days]} if days else {}
    try:
        run_id = await jobs.trigger(DAILY, project_id, params)
    except KeyError as exc:
        raise Unavailable(f"this installation does not schedule the job {DAILY}") from exc
    return ReconciliationRunAccepted(run_id=run_id, job=DAILY, days=days)
