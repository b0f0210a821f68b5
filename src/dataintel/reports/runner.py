"""The report worker: claims queued reports from the metadata store and generates them,
one at a time, beside the stream processor (in `dataintel worker`, and in `dataintel serve`
in embedded mode). Generation runs in a thread, so a slow report never blocks the event
loop that serves the API.

A run: claim (a lease of ``report_lease_seconds``), renew the lease every third of it
while the kind produces its data and the format renders the file, write the file, mark the
report done (or failed, with the reason). Each write is conditional on still holding the
lease. A process killed mid-run leaves the lease to run out; the next worker retries the
report, up to ``report_max_attempts`` runs, then fails it visibly. Between claims the
runner expires finished reports (their files are deleted).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from dataintel.api.ports import Port
from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.errors import ServiceError
from dataintel.reports import repository
from dataintel.reports.data import RenderMeta, ReportContext
from dataintel.reports.errors import ReportError
from dataintel.reports.files import ReportFiles
from dataintel.reports.formats import ReportFormat, render
from dataintel.reports.kinds import KINDS
from dataintel.settings import Settings
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.blob.port import BlobStore
from dataintel.storage.errors import StorageError
from dataintel.storage.metadata.audit_repository import append
from dataintel.storage.metadata.report_models import Report
from dataintel.storage.metadata.types import utcnow

log = structlog.get_logger("dataintel.reports")


class ReportRunner:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        analytics: AnalyticsStore,
        configs: ActiveConfigCache,
        blobs: BlobStore | None = None,
    ) -> None:
        self.blobs = blobs  # the S3 bucket kinds may write to (custom exports to s3)
        self.settings = settings
        self.sessions = sessions
        self.analytics = analytics
        self.configs = configs
        self.files = ReportFiles(settings.resolved_reports_dir)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = timedelta(seconds=settings.report_lease_seconds)
        self._wake = asyncio.Event()
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._current: str | None = None
        self._last_sweep = 0.0

    # --- life -------------------------------------------------------------------------

    def start(self) -> None:
        self._loop_ref = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._loop(), name="dataintel-reports")

    def wake(self) -> None:
        """A report was queued in this process: look now rather than at the next poll
        (callable from any thread)."""
        if self._loop_ref is not None:
            self._loop_ref.call_soon_threadsafe(self._wake.set)

    async def stop(self) -> None:
        current = self._current
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if current is not None:  # give it back: another worker runs it at once
            await asyncio.to_thread(self._write, repository.release, current, self.owner)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() - self._last_sweep >= self.settings.report_poll_seconds:
                    self._last_sweep = loop.time()
                    await asyncio.to_thread(self.sweep)
                report = await asyncio.to_thread(self.claim)
                if report is not None:
                    await self._run(report)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("report worker step failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.report_poll_seconds)
            self._wake.clear()

    # --- one run ----------------------------------------------------------------------

    def claim(self) -> Report | None:
        now = utcnow()
        with self.sessions.begin() as session:
            return repository.claim(
                session, self.owner, now, now + self.lease, self.settings.report_max_attempts
            )

    async def _run(self, report: Report) -> None:
        self._current = report.id
        renewing = asyncio.create_task(self._renew(report.id))
        try:
            await asyncio.to_thread(self.generate, report)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            self._current = None

    async def _renew(self, report_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            held = await asyncio.to_thread(
                self._write, repository.renew, report_id, self.owner, utcnow() + self.lease
            )
            if not held:
                log.warning("report lease lost", report_id=report_id)
                return

    def generate(self, report: Report) -> None:
        """Produce, render and store one claimed report; record the outcome (in a thread)."""
        started = utcnow()
        path = None
        try:
            kind = KINDS.get(report.kind)
            if kind is None:
                raise ReportError(f"report kind {report.kind!r} is not known to this worker")
            ctx = ReportContext(
                report.project_id, self.analytics, self.configs, started, report.id, self.blobs
            )
            data = kind.run(ctx, report.params)
            title = report.title or data.title
            meta = RenderMeta(report.id, report.kind, title, report.params, started)
            out = render(data, meta, ReportFormat(report.format))
            path = self.files.path(report.id, report.attempts, out.extension)
            self.files.write(path, out.body)
            output = repository.Output(
                title,
                str(path),
                f"{report.kind}-{report.id}.{out.extension}",
                out.media_type,
                len(out.body),
            )
        except (ReportError, ServiceError, StorageError, ValueError) as exc:
            self._failed(report, _reason(exc), path)
            return
        except Exception as exc:
            log.exception("report generation failed", report_id=report.id)
            self._failed(
                report,
                f"an unexpected error occurred ({type(exc).__name__}); see the worker's log",
                path,
            )
            return
        now = utcnow()
        if not self._write(
            repository.finish, report.id, self.owner, output, now, self._expiry(now)
        ):
            self.files.delete(path)  # another worker took the report over
            log.warning("report lease lost before it was done", report_id=report.id)
            return
        self.files.delete_runs(report.id, keep=path)  # what interrupted runs left
        if data.audit is not None:
            self._write(
                record_in, report.project_id, report.created_by, report.id, dict(data.audit)
            )
        log.info(
            "report done",
            report_id=report.id,
            bytes=output.size_bytes,
            seconds=round((now - started).total_seconds(), 3),
        )

    def _failed(self, report: Report, reason: str, path: object) -> None:
        if path is not None:
            self.files.delete(str(path))
        now = utcnow()
        self._write(repository.fail, report.id, self.owner, reason, now, self._expiry(now))
        log.info("report failed", report_id=report.id, reason=reason)

    def _write(self, op: Callable[..., bool], *args: object) -> bool:
        with self.sessions.begin() as session:
            return op(session, *args)

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.report_expiry_seconds)

    # --- expiry -----------------------------------------------------------------------

    def sweep(self) -> None:
        """Fail reports whose every run was interrupted; expire finished ones (delete
        their files)."""
        now = utcnow()
        with self.sessions.begin() as session:
            failed = repository.fail_abandoned(
                session, now, self.settings.report_max_attempts, self._expiry(now)
            )
        if failed:
            log.warning("reports failed after interrupted runs", count=failed)
        with self.sessions() as session:
            due = [r.id for r in repository.due_to_expire(session, now)]
        for report_id in due:
            self.files.delete_runs(report_id)
            with self.sessions.begin() as session:
                repository.mark_expired(session, report_id)


def record_in(
    session: Session, project_id: str, actor: str, report_id: str, detail: dict[str, Any]
) -> bool:
    """The audit entry of what a finished report handed out (``ReportData.audit``)."""
    append(session, project_id, actor, "export_delivered", report_id, detail)
    return True


def _reason(exc: Exception) -> str:
    if isinstance(exc, ServiceError):
        return exc.detail
    if hasattr(exc, "errors") and callable(exc.errors):  # pydantic: the stored params
        return f"the report's parameters are no longer valid: {exc}"
    return str(exc)


REPORTS: Port[ReportRunner] = Port("reports", "no report worker runs in this process")
