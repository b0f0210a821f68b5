"""The retention runner: applies each project's deployed retention policy in every store,
every ``retention_interval_seconds``.

It runs beside the stream processor (where the analytics store is open). A project's run is
claimed with a lease in ``retention_status`` (renewed while it runs), so of several workers
one runs it per interval; a run killed midway is taken up again once its lease runs out.
Each store is tried even when another failed; the run's outcome (counts per store, or the
reason a store failed) is recorded in the project's status and in its audit chain. A failed
store is tried again at the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog

from dataintel.api.ports import Port
from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.model.retention import RetentionPolicy
from dataintel.retention.stores import Stores
from dataintel.settings import Settings
from dataintel.storage.metadata import retention_repository as repo
from dataintel.storage.metadata.audit_repository import append
from dataintel.storage.metadata.types import utcnow

log = structlog.get_logger("dataintel.retention")
LEASE_S = 300.0
ACTOR = "retention"


class RetentionRunner:
    def __init__(self, settings: Settings, stores: Stores, configs: ActiveConfigCache) -> None:
        self.stores = stores
        self.configs = configs
        self.interval = timedelta(seconds=settings.retention_interval_seconds)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="retention-runner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("retention round failed")
            await asyncio.sleep(min(self.interval.total_seconds(), 60.0))

    async def tick(self, now: datetime | None = None) -> dict[str, repo.Outcome]:
        """One round: every due project with a deployed policy that deletes something."""
        with self.stores.sessions() as session:
            projects = list(repo.deployed_projects(session))
        done: dict[str, repo.Outcome] = {}
        for project_id in projects:
            active = await self.configs.aget(project_id)
            policy = active.snapshot.retention
            if not policy.configured():
                continue
            at = now or utcnow()
            if not await asyncio.to_thread(self._claim, project_id, at):
                continue
            done[project_id] = await self._run(project_id, active.version, policy, at)
        return done

    def _claim(self, project_id: str, now: datetime) -> bool:
        with self.stores.sessions.begin() as session:
            return repo.claim(
                session, project_id, self.owner, now, now + timedelta(seconds=LEASE_S)
            )

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
            times = (finished, finished + self.interval)
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
