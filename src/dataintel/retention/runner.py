"""The retention runner: applies each project's deployed retention policy in every store,
as the scheduled job ``retention.apply`` (every ``retention_interval_seconds``).

It runs beside the stream processor (where the analytics store is open). The scheduler runs
each slot once across workers; the run also holds a lease in ``retention_status`` (renewed
while it runs), so a manual run never overlaps a scheduled one.
Each store is tried even when another failed; the run's outcome (counts per store, or the
reason a store failed) is recorded in the project's status and in its audit chain. A failed
store is tried again at the next run.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog

from dataintel.api.ports import Port
from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.model.jobs import Job, JobOutcome, JobRun, slot_of
from dataintel.model.retention import RetentionPolicy
from dataintel.retention.stores import Stores
from dataintel.settings import Settings
from dataintel.storage.metadata import retention_repository as repo
from dataintel.storage.metadata.audit_repository import append
from dataintel.storage.metadata.types import utcnow

log = structlog.get_logger("dataintel.retention")
LEASE_S = 300.0
ACTOR = "retention"
JOB = "retention.apply"
DESCRIPTION = "Apply the deployed retention policy in every store."


class RetentionRunner:
    def __init__(self, settings: Settings, stores: Stores, configs: ActiveConfigCache) -> None:
        self.stores = stores
        self.configs = configs
        self.interval = timedelta(seconds=settings.retention_interval_seconds)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def job(self) -> Job:
        """The scheduled job (docs/adr/0012): one run per project per interval."""
        return Job(JOB, DESCRIPTION, self.interval, self._job_run)

    async def _job_run(self, run: JobRun) -> JobOutcome:
        outcome = await self.run(run.project_id, utcnow())
        if outcome is None:
            return {"skipped": "the deployed policy deletes nothing, or another run holds it"}
        if outcome.status == repo.FAILED:
            raise RuntimeError(outcome.error)  # the counts are in the project's status
        return {"status": outcome.status, "deleted": outcome.deleted}

    async def run(self, project_id: str, now: datetime) -> repo.Outcome | None:
        """Apply the project's deployed policy now; None when it deletes nothing or a live
        lease of another run holds the project."""
        active = await self.configs.aget(project_id)
        policy = active.snapshot.retention
        if not policy.configured():
            return None
        if not await asyncio.to_thread(self._claim, project_id, now):
            return None
        return await self._run(project_id, active.version, policy, now)

    def _claim(self, project_id: str, now: datetime) -> bool:
        with self.stores.sessions.begin() as session:
            until = now + timedelta(seconds=LEASE_S)
            return repo.claim(session, project_id, self.owner, now, until)

    async def _run(
        self, project_id: str, version: int | None, policy: RetentionPolicy, now: datetime
    ) -> repo.Outcome:
        renewing = asyncio.create_task(self._renew(project_id))
        try:
            outcome = await self.apply(project_id, policy, now)
        finally:
            renewing.cancel()
        await asyncio.to_thread(self._finish, project_id, version, outcome)
        return outcome

    async def apply(self, project_id: str, policy: RetentionPolicy, now: datetime) -> repo.Outcome:
        """Apply ``policy`` at ``now`` in every store; the counts, and the failures."""
        stores, cutoffs = self.stores, policy.event_cutoffs(now)
        steps: dict[str, Callable[[], Awaitable[int]]] = {}
        if cutoffs.any():
            steps["analytics"] = lambda: stores.analytics_store(project_id, cutoffs)
            steps["event_log"] = lambda: stores.event_log(project_id, cutoffs)
            steps["data_lake"] = lambda: stores.data_lake(project_id, cutoffs)
        dead_before = policy.cutoff(policy.dead_letters_days, now)
        if dead_before is not None:
            steps["dead_letters"] = lambda: asyncio.to_thread(
                stores.dead_letters, project_id, dead_before
            )
        reports_before = policy.cutoff(policy.reports_days, now)
        if reports_before is not None:
            steps["reports"] = lambda: asyncio.to_thread(stores.reports, project_id, reports_before)
        deleted: dict[str, int] = {}
        errors: dict[str, str] = {}
        for store, step in steps.items():
            try:
                deleted[store] = await step()
            except Exception as exc:
                log.exception("retention store failed", project_id=project_id, store=store)
                errors[store] = f"{store}: {type(exc).__name__}: {exc}"[:500]
        if not errors:
            return repo.Outcome(repo.FINISHED, deleted)
        return repo.Outcome(repo.FAILED, deleted, "; ".join(errors.values()), tuple(errors))

    async def _renew(self, project_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            until = utcnow() + timedelta(seconds=LEASE_S)
            await asyncio.to_thread(self._write_renew, project_id, until)

    def _write_renew(self, project_id: str, until: datetime) -> None:
        with self.stores.sessions.begin() as session:
            repo.renew(session, project_id, self.owner, until)

    def _finish(self, project_id: str, version: int | None, outcome: repo.Outcome) -> None:
        finished = utcnow()
        with self.stores.sessions.begin() as session:
            times = (finished, slot_of(finished, self.interval) + self.interval)
            repo.finish(session, project_id, self.owner, outcome, version, times)
            detail: dict[str, object] = {
                "policy_version": version,
                "status": outcome.status,
                "deleted": outcome.deleted,
            }
            if outcome.failed:
                detail["failed"] = list(outcome.failed)  # the reasons: in the status only
            append(session, project_id, ACTOR, "retention_run", None, detail)
        log.info("retention run", project_id=project_id, **detail)


RETENTION_RUNNER: Port[RetentionRunner] = Port(
    "retention-runner", "no retention runner runs in this process"
)
