"""Reports as the API sees them: queue one (its kind and parameters checked now, so a bad
request is a 422, never a failed report), read its status, hand out its file."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.orm import Session

from dataintel.api.problems import validation_errors
from dataintel.errors import InvalidInput, NotFound
from dataintel.reports import repository
from dataintel.reports.errors import ReportExpired, ReportFailed
from dataintel.reports.kinds import KINDS, kind_names
from dataintel.reports.schemas import ReportCreate, ReportFile, ReportRead
from dataintel.storage.metadata.report_models import Report
from dataintel.storage.metadata.types import utcnow


@dataclass(frozen=True, slots=True)
class Download:
    path: Path
    name: str
    media_type: str


def report_url(report_id: str) -> str:
    return f"/v1/reports/{report_id}"


def to_read(report: Report) -> ReportRead:
    file = None
    if report.state == repository.DONE and report.file_name and report.media_type:
        file = ReportFile(
            name=report.file_name,
            media_type=report.media_type,
            size_bytes=report.size_bytes or 0,
        )
    return ReportRead(
        id=report.id,
        project_id=report.project_id,
        kind=report.kind,
        params=report.params,
        format=report.format,
        status=report.state,
        title=report.title,
        attempts=report.attempts,
        error=report.error,
        created_at=report.created_at,
        started_at=report.started_at,
        finished_at=report.finished_at,
        expires_at=report.expires_at,
        file=file,
        url=report_url(report.id),
    )


class ReportService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, project_id: str, data: ReportCreate, created_by: str) -> ReportRead:
        kind = KINDS.get(data.kind)
        if kind is None:
            raise InvalidInput.field(
                ["body", "kind"],
                f"unknown report kind {data.kind!r}; one of: {', '.join(kind_names())}",
            )
        try:
            params = kind.params.model_validate(data.params)
        except ValidationError as exc:
            errors = validation_errors(list(exc.errors()))
            for err in errors:
                err["loc"] = ["body", "params", *err["loc"]]
                err["pointer"] = "/" + "/".join(str(p) for p in err["loc"])
            detail = ", ".join(f"{e['pointer']}: {e['msg']}" for e in errors[:5])
            raise InvalidInput(detail, errors) from None
        report = Report(
            id=f"rep_{uuid.uuid4().hex}",
            project_id=project_id,
            kind=kind.name,
            params=params.model_dump(mode="json", by_alias=True),
            format=data.format.value,
            title=data.title,
            state=repository.QUEUED,
            attempts=0,
            created_by=created_by,
        )
        return to_read(repository.add(self.session, report))

    def get(self, project_id: str, report_id: str) -> Report:
        """The report, or 404 (also for another project's: tenants learn nothing)."""
        report = repository.get(self.session, project_id, report_id)
        if report is None:
            raise NotFound(f"report '{report_id}' not found")
        return report

    def download(self, project_id: str, report_id: str) -> Download | ReportRead:
        """The file when done, else the status (queued / running); 410 once expired, 409
        with the reason when it failed."""
        report = self.get(project_id, report_id)
        now = utcnow()
        if report.state == repository.EXPIRED or _past(report.expires_at, now):
            raise ReportExpired(
                f"report '{report_id}' expired at {_iso(report.expires_at)}; generate it again",
                expired_at=_iso(report.expires_at),
            )
        if report.state == repository.FAILED:
            raise ReportFailed(
                f"report '{report_id}' failed: {report.error}",
                report=to_read(report).model_dump(mode="json"),
            )
        if report.state != repository.DONE:
            return to_read(report)
        path = Path(report.file_path or "")
        if not report.file_path or not path.is_file():
            raise ReportExpired(f"the file of report '{report_id}' is no longer stored")
        return Download(path, report.file_name or path.name, report.media_type or "")


def _past(when: datetime | None, now: datetime) -> bool:
    return when is not None and when <= now


def _iso(when: datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when else None
