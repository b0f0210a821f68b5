"""The GDPR runner: carries out queued forget requests store by store, and delivers the
``gdpr.forget`` messages of the outbox.

It runs beside the stream processor (where the analytics and online stores are open). A
request is claimed with a lease (renewed while it runs), so after a crash or kill -9 it is
taken up again, by this process when it restarts or by another worker, and resumes at the
first store not finished: what each step needs later (the log's end when the request
started, the subject's carts and sessions) is kept in the request's ``state`` until it ends.
A failed store is retried with exponential back-off; after ``gdpr_max_attempts`` the
request fails with that store's reason. When every store has finished, the subject's id is
cleared from the request and a ``gdpr.forget`` message is queued in the outbox, delivered at
least once (its Idempotency-Key is the request id) and deleted once delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from dataintel.api.ports import Port
from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.online.plans import plan_project
from dataintel.gdpr import repository as repo
from dataintel.gdpr.erasure import NotYet, Stores
from dataintel.gdpr.metrics import GdprMetrics
from dataintel.gdpr.outbox import Outbox, backoff
from dataintel.gdpr.subject import find
from dataintel.model.subject import Subject
from dataintel.settings import Settings
from dataintel.storage.metadata.audit_repository import append
from dataintel.storage.metadata.engine import scrub
from dataintel.storage.metadata.gdpr_models import GdprRequest, GdprTask
from dataintel.storage.metadata.types import utcnow

log = structlog.get_logger("dataintel.gdpr")
POLL_S = 1.0
LEASE_S = 30.0
WAIT_S = 0.5  # a step that must wait (NotYet) is tried again this much later
METADATA_TABLES = ["gdpr_requests", "gdpr_tasks", "gdpr_outbox"]


class GdprRunner:
    def __init__(
        self,
        settings: Settings,
        stores: Stores,
        configs: ActiveConfigCache,
        outbox: Outbox,
        metrics: GdprMetrics,
    ) -> None:
        self.metrics = metrics
        self.stores = stores
        self.configs = configs
        self.max_attempts = settings.gdpr_max_attempts
        self.settle = timedelta(seconds=2 * settings.gdpr_suppression_refresh_seconds)
        self.outbox = outbox
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="gdpr-runner")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.outbox.close()

    async def _loop(self) -> None:
        released = False  # the leases of this host's dead processes, once the store answers
        while not self._stopping:
            if not released:
                try:
                    host = socket.gethostname()
                    await asyncio.to_thread(self._write, _release_dead_local_leases, host)
                    released = True
                except Exception:  # noqa: BLE001 - the store is down: health says so; retry
                    log.warning("gdpr runner cannot reach the metadata store yet")
            try:
                worked = await self.tick()
            except Exception:
                log.exception("gdpr runner round failed")
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
                self._wake.clear()

    async def tick(self) -> bool:
        """One round: deliver due messages, then work on one due request."""
        await self.outbox.deliver()
        request_id = await asyncio.to_thread(self._claim)
        if request_id is None:
            return False
        renewing = asyncio.create_task(self._renew(request_id))
        try:
            await self.run(request_id)
        finally:
            renewing.cancel()
            await asyncio.to_thread(self._write, repo.release, request_id)
        return True

    def _claim(self) -> str | None:
        now = utcnow()
        with self.stores.sessions.begin() as session:
            return repo.claim(session, self.owner, now, now + timedelta(seconds=LEASE_S))

    async def _renew(self, request_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            until = utcnow() + timedelta(seconds=LEASE_S)
            await asyncio.to_thread(self._update, request_id, lease_expires_at=until)

    def _write(self, op: Any, *args: Any) -> None:
        with self.stores.sessions.begin() as session:
            op(session, *args)

    def _update(self, request_id: str, **values: Any) -> None:
        with self.stores.sessions.begin() as session:
            request = session.get(GdprRequest, request_id)
            if request is not None:
                for name, value in values.items():
                    setattr(request, name, value)

    def _update_task(self, request_id: str, store: str, **values: Any) -> None:
        with self.stores.sessions.begin() as session:
            task = session.get(GdprTask, (request_id, store))
            if task is not None:
                for name, value in values.items():
                    setattr(task, name, value)

    # --- one request ----------------------------------------------------------------------

    def _start(self, request_id: str) -> _Work | None:
        """The request's work (marked running), or None when there is none left."""
        with self.stores.sessions.begin() as session:
            request = session.get(GdprRequest, request_id)
            if request is None or request.status not in (repo.PENDING, repo.RUNNING):
                return None
            if request.status == repo.PENDING:
                request.status, request.started_at = repo.RUNNING, utcnow()
            tasks = repo.tasks(session, [request_id])[request_id]
            return _Work(
                project_id=request.project_id,
                user_id=request.user_id or "",
                state=dict(request.state),
                created_at=request.created_at,
                todo=[t.store for t in tasks if t.status != repo.FINISHED],
            )

    async def run(self, request_id: str) -> None:
        """Every DB call goes to a thread: one blocked on SQLite's write lock must never hold
        the event loop (the request holding the lock may need the loop to finish)."""
        work = await asyncio.to_thread(self._start, request_id)
        if work is None:
            return
        project_id, user_id, state, created_at = (
            work.project_id,
            work.user_id,
            work.state,
            work.created_at,
        )
        try:
            subject = await self._prepare(request_id, project_id, user_id, state, created_at)
            for store in work.todo:
                await self._step(request_id, store, subject, state, created_at)
        except NotYet as wait:
            log.debug("gdpr request waits", request_id=request_id, reason=str(wait))
            retry = utcnow() + timedelta(seconds=WAIT_S)
            await asyncio.to_thread(self._update, request_id, next_attempt_at=retry)
            return
        except _StoreFailed:
            return
        await asyncio.to_thread(self._finish, request_id, user_id)

    async def _prepare(
        self,
        request_id: str,
        project_id: str,
        user_id: str,
        state: dict[str, Any],
        created_at: datetime,
    ) -> Subject:
        """The log's end once suppression has reached every API process, then (once the
        sinks have applied up to it) the subject as the analytics store knows it."""
        if "ends" not in state:
            if utcnow() < created_at + self.settle:
                raise NotYet("suppression is reaching every API process")
            ends = await self.stores.eventlog.end_offsets()
            state["ends"] = {str(p): o for p, o in ends.items()}
            await asyncio.to_thread(self._update, request_id, state=dict(state))
        if "carts" not in state:
            if not await asyncio.to_thread(self.stores.caught_up, _ends(state)):
                raise NotYet("the stream processor has not applied the log up to the request")
            keys = {
                p.entity_key
                for p in plan_project(project_id, self.configs.get(project_id).snapshot)
            }
            found = await asyncio.to_thread(find, self.stores.analytics, project_id, user_id, keys)
            state["carts"] = sorted(found.subject.cart_ids)
            state["sessions"] = sorted(found.subject.session_ids)
            state["recompute"] = found.recompute
            await asyncio.to_thread(self._update, request_id, state=dict(state))
        return Subject(project_id, user_id, frozenset(state["carts"]), frozenset(state["sessions"]))

    async def _step(
        self,
        request_id: str,
        store: str,
        subject: Subject,
        state: dict[str, Any],
        created_at: datetime,
    ) -> None:
        await asyncio.to_thread(
            self._update_task, request_id, store, status=repo.RUNNING, started_at=utcnow()
        )
        started = time.monotonic()
        try:
            erased = await self._erase(request_id, store, subject, state, created_at)
        except NotYet:
            raise
        except Exception as exc:
            self.metrics.store_failures.labels(store).inc()
            await asyncio.to_thread(self._failed, request_id, store, _reason(exc))
            raise _StoreFailed from exc
        self.metrics.store_seconds.labels(store).observe(time.monotonic() - started)
        await asyncio.to_thread(
            self._update_task,
            request_id,
            store,
            status=repo.FINISHED,
            erased=erased,
            error=None,
            finished_at=utcnow(),
        )

    async def _erase(
        self,
        request_id: str,
        store: str,
        subject: Subject,
        state: dict[str, Any],
        created_at: datetime,
    ) -> int:
        stores = self.stores
        if store == "data_lake":
            return await stores.data_lake(subject, _ends(state))
        if store == "event_log":
            return await stores.event_log(subject, _ends(state))
        if store == "analytics":
            return await stores.analytics_store(subject)
        if store == "online":
            return await stores.online_store(subject, state.get("recompute", {}))
        if store == "dead_letters":
            return await asyncio.to_thread(stores.dead_letters, subject)
        if store == "reports":
            return await asyncio.to_thread(stores.reports, subject, created_at, request_id)
        raise ValueError(f"unknown store {store!r}")

    def _failed(self, request_id: str, store: str, reason: str) -> None:
        now = utcnow()
        with self.stores.sessions.begin() as session:
            task = session.get(GdprTask, (request_id, store))
            request = session.get(GdprRequest, request_id)
            assert task is not None
            assert request is not None
            task.status, task.error, task.attempts = repo.FAILED, reason, task.attempts + 1
            log.warning("gdpr store failed", request_id=request_id, store=store, error=reason)
            if task.attempts < self.max_attempts:
                request.next_attempt_at = now + backoff(task.attempts)
                return
            request.status, request.finished_at = repo.FAILED, now
            self.metrics.requests.labels("failed").inc()
            request.error = f"{store}: {reason}"
            detail = {"request_id": request_id, "store": store, "error": reason}
            append(session, request.project_id, "gdpr", "gdpr_request_failed", request_id, detail)

    def _finish(self, request_id: str, user_id: str) -> None:
        with self.stores.sessions.begin() as session:
            request = session.get(GdprRequest, request_id)
            assert request is not None
            tasks = repo.tasks(session, [request_id])[request_id]
            request.status, request.finished_at = repo.FINISHED, utcnow()
            self.metrics.requests.labels("finished").inc()
            request.user_id, request.state, request.error = None, {}, None
            if self.outbox.destinations:
                repo.enqueue(session, request_id, _message(request, user_id))
            detail = {"request_id": request_id, "erased": {t.store: t.erased for t in tasks}}
            append(session, request.project_id, "gdpr", "gdpr_request_finished", request_id, detail)
        scrub(self.stores.engine, METADATA_TABLES)
        log.info("gdpr request finished", request_id=request_id)


def _release_dead_local_leases(session: Any, host: str) -> None:
    """Leases held by a process of this host that is gone (killed): released at once, so a
    restarted worker resumes its requests without waiting for the leases to run out."""
    for request_id, owner in repo.leases_of_host(session, host):
        pid = owner.split(":")[1] if owner.count(":") >= 2 else ""
        # Our own pid: an earlier life of this process's pid (a container's pid 1), since a
        # runner that is starting holds no lease yet.
        if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            repo.release(session, request_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class _Work:
    project_id: str
    user_id: str
    state: dict[str, Any]
    created_at: datetime
    todo: list[str]  # stores not finished, in order


class _StoreFailed(Exception):
    """A store's step failed; recorded, the request waits for its retry."""


def _ends(state: dict[str, Any]) -> dict[int, int]:
    return {int(p): int(o) for p, o in state["ends"].items()}


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _message(request: GdprRequest, user_id: str) -> dict[str, object]:
    return {
        "type": "gdpr.forget",
        "request_id": request.id,
        "project_id": request.project_id,
        "user_id": user_id,
        "request_type": request.kind,
        "finished_at": request.finished_at.isoformat() if request.finished_at else None,
    }


GDPR_RUNNER: Port[GdprRunner] = Port("gdpr-runner", "no GDPR runner runs in this process")
