"""The scheduler: runs every job once per project per slot, across worker processes
(docs/adr/0012).

Each worker, every ``scheduler_poll_seconds``: inserts the current slot's row of each job for
every deployed project (ON CONFLICT DO NOTHING: the unique (job, project, slot) makes it one
row whoever inserts it), then claims free rows — pending, or running under a lease that ran
out — with a conditional UPDATE that bumps the row's fence. The holder renews its lease
while the job runs and records the outcome only if the fence is still its own. A holder
killed with kill -9 stops renewing; once its lease runs out (``scheduler_lease_seconds``)
another worker claims the slot again, so a job's ``run`` must be idempotent per
(project, slot). A slot missed while no worker ran is not caught up: the next slot runs.

An API-only process holds a trigger-only scheduler: it queues manual runs that a worker
picks up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from dataintel.api.ports import Port
from dataintel.model.jobs import Job, JobInfo, JobRun, slot_of
from dataintel.scheduler import repository as repo
from dataintel.scheduler.metrics import JobMetrics
from dataintel.settings import Settings
from dataintel.storage.metadata.types import utcnow

log = structlog.get_logger("dataintel.scheduler")
ENSURE_EVERY_S = 10.0  # new projects get the current slot's row within this
PRUNE_EVERY_S = 3600.0


class Scheduler:
    """Runs ``jobs`` (when started) and queues manual runs of them or of the jobs of
    ``catalog`` (an API-only process knows what the workers run, not how)."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        jobs: Sequence[Job] = (),
        catalog: Sequence[JobInfo] = (),
        metrics: JobMetrics | None = None,
    ) -> None:
        self.sessions = sessions
        self.jobs = {job.name: job for job in jobs}
        infos = {info.name: info for info in catalog}
        infos.update((job.name, job.info()) for job in jobs)
        self.catalog = dict(sorted(infos.items()))
        self.metrics = metrics
        self.scheduled = settings.scheduler_scheduled
        self.poll = settings.scheduler_poll_seconds
        self.lease = timedelta(seconds=settings.scheduler_lease_seconds)
        self.concurrency = settings.scheduler_concurrency
        self.keep = timedelta(days=settings.scheduler_keep_days)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._ensured: dict[str, tuple[datetime, float]] = {}
        self._running: dict[int, asyncio.Task[None]] = {}
        self._task_runs: dict[asyncio.Task[None], int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pruned = 0.0

    # -- JobTrigger ---------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self.catalog)

    async def trigger(
        self, job: str, project_id: str, params: Mapping[str, Any] | None = None
    ) -> int:
        if job not in self.catalog:
            raise KeyError(job)
        values = json.loads(json.dumps(dict(params or {})))  # plain JSON, or TypeError
        run_id = await asyncio.to_thread(self._create_manual, job, project_id, values)
        self._wake.set()
        return run_id

    def _create_manual(self, job: str, project_id: str, params: dict[str, Any]) -> int:
        with self.sessions.begin() as session:
            return repo.create_manual(session, job, project_id, utcnow(), params)

    # -- the loop -----------------------------------------------------------------------

    def start(self) -> None:
        if self.jobs:
            self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        running = list(self._running.values())
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)
            self._wake.clear()

    async def tick(self, now: datetime | None = None) -> list[int]:
        """One round: due slots inserted, free runs claimed and started; their ids."""
        at = now or utcnow()
        await asyncio.to_thread(self._ensure_slots, at)
        free = self.concurrency - len(self._running)
        if free <= 0:
            return []
        claims = await asyncio.to_thread(self._claim, at, free)
        for claim in claims:
            task = asyncio.create_task(self._execute(claim), name=f"job-{claim.id}")
            self._task_runs[task] = claim.id
            self._running[claim.id] = task
            task.add_done_callback(self._forget)
        return [claim.id for claim in claims]

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._running.pop(self._task_runs.pop(task), None)

    async def drain(self) -> None:
        """Wait for the runs this worker holds (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    def _ensure_slots(self, now: datetime) -> None:
        clock = time.monotonic()
        due = []
        for job in self.jobs.values() if self.scheduled else ():
            slot = slot_of(now, job.every)
            last = self._ensured.get(job.name)
            if last is None or last[0] != slot or clock - last[1] >= ENSURE_EVERY_S:
                due.append((job.name, slot))
        prune = clock - self._pruned >= PRUNE_EVERY_S
        if not due and not prune:
            return
        with self.sessions.begin() as session:
            projects = repo.deployed_projects(session)
            for name, slot in due:
                repo.ensure_slot(session, name, projects, slot)
            if prune:
                repo.prune(session, utcnow() - self.keep)  # created_at is the real clock
        for name, slot in due:
            self._ensured[name] = (slot, clock)
        if prune:
            self._pruned = clock

    def _claim(self, now: datetime, free: int) -> list[repo.Claim]:
        claims: list[repo.Claim] = []
        with self.sessions.begin() as session:
            candidates = repo.claimable(session, list(self.jobs), now, free * 4)
        for run_id in candidates:
            if run_id in self._running:
                continue
            with self.sessions.begin() as session:
                claim = repo.claim(session, run_id, self.owner, now, now + self.lease)
            if claim is not None:
                claims.append(claim)
                if len(claims) == free:
                    break
        return claims

    async def _execute(self, claim: repo.Claim) -> None:
        job = self.jobs[claim.job]
        run = JobRun(claim.id, claim.job, claim.project_id, claim.slot, claim.manual, claim.params)
        renewing = asyncio.create_task(self._renew(claim))
        started = time.monotonic()
        outcome: dict[str, Any] | None = None
        error: str | None = None
        try:
            found = await job.run(run)
            outcome = json.loads(json.dumps(found, default=str))
        except asyncio.CancelledError:
            renewing.cancel()
            raise  # shutting down: the lease runs out and another worker takes the slot
        except Exception as exc:
            log.exception("job run failed", job=claim.job, project_id=claim.project_id)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        finally:
            renewing.cancel()
        held = await asyncio.to_thread(self._finish, claim, outcome, error)
        label = "fenced" if not held else ("failed" if error is not None else "finished")
        if self.metrics is not None:
            self.metrics.runs.labels(claim.job, label).inc()
            self.metrics.seconds.labels(claim.job).observe(time.monotonic() - started)
        log.info(
            "job run",
            job=claim.job,
            project_id=claim.project_id,
            run_id=claim.id,
            outcome=label,
            seconds=round(time.monotonic() - started, 3),
        )

    async def _renew(self, claim: repo.Claim) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            until = utcnow() + self.lease
            if not await asyncio.to_thread(self._write_renew, claim, until):
                log.warning("job run lost its lease", job=claim.job, run_id=claim.id)
                return

    def _write_renew(self, claim: repo.Claim, until: datetime) -> bool:
        with self.sessions.begin() as session:
            return repo.renew(session, claim, until)

    def _finish(self, claim: repo.Claim, outcome: dict[str, Any] | None, error: str | None) -> bool:
        with self.sessions.begin() as session:
            return repo.finish(session, claim, utcnow(), outcome, error)


SCHEDULER: Port[Scheduler] = Port("scheduler", "the job scheduler is not running in this process")
