"""The scheduler through its public interface: two schedulers on one metadata store run a
slot once, a holder whose lease ran out is fenced (its outcome is dropped, its successor's
kept), a failing run is recorded, and the jobs API lists, triggers and reads runs per
project (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.composition import job_catalog
from dataintel.config.deployments.active import CONFIGS
from dataintel.model.jobs import Job, JobOutcome, JobRun, slot_of
from dataintel.scheduler import repository as repo
from dataintel.scheduler.service import SCHEDULER, Scheduler
from dataintel.settings import Settings
from dataintel.storage.metadata.engine import make_engine, make_sessionmaker
from dataintel.storage.metadata.job_models import JobRunRow
from dataintel.storage.metadata.migrate import upgrade
from tests.conftest import Keys, apply_yaml

BOTH = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
SHOP = """
project: {id: shop, name: Shop}
pipelines: [{id: web, name: Web, events: [{name: view}]}]
retention: {events_days: 30}
"""
OTHER = SHOP.replace("shop", "other").replace("Shop", "Other")
T0 = datetime(2031, 1, 6, 12, 0, 0, tzinfo=UTC)
LEASE_S = 60.0  # renewed every 20 s of real time: never within these tests


def test_slots_are_multiples_of_the_interval_since_the_epoch() -> None:
    every = timedelta(minutes=15)
    assert slot_of(T0 + timedelta(minutes=14, seconds=59), every) == T0
    assert slot_of(T0 + timedelta(minutes=15), every) == T0 + every
    assert slot_of(T0, timedelta(days=1)) == datetime(2031, 1, 6, tzinfo=UTC)


class Recorder:
    """A job that records each run it is given, optionally failing or blocking."""

    def __init__(self, fail: bool = False) -> None:
        self.runs: list[JobRun] = []
        self.fail = fail
        self.release: asyncio.Event | None = None

    async def __call__(self, run: JobRun) -> JobOutcome:
        self.runs.append(run)
        if self.release is not None:
            await self.release.wait()
        if self.fail:
            raise ValueError("the store said no")
        return {"project": run.project_id, "slot": run.slot.isoformat()}


@pytest.fixture
def store(settings: Settings, keys: Keys) -> Any:
    """The test's metadata store with two deployed projects."""
    engine = make_engine(settings.resolved_metadata_url)
    upgrade(engine)
    keys.project("shop")
    keys.project("other")
    return make_sessionmaker(engine)


def deploy(app: Any, *texts: str) -> None:
    for text in texts:
        apply_yaml(app, text)
    app.state.dataintel.port(CONFIGS).invalidate()


def scheduler(settings: Settings, sessions: Any, job: Recorder, **kw: Any) -> Scheduler:
    tuned = settings.model_copy(
        update={"scheduler_lease_seconds": LEASE_S, "scheduler_scheduled": True, **kw}
    )
    return Scheduler(tuned, sessions, jobs=[Job("test.record", "records", timedelta(hours=1), job)])


def rows(sessions: Any) -> list[JobRunRow]:
    """The test job's runs (the app's own scheduler records its jobs' runs beside them)."""
    with sessions() as session:
        query = session.query(JobRunRow).filter(JobRunRow.job == "test.record")
        return list(query.order_by(JobRunRow.id).all())


@BOTH
def test_two_schedulers_run_each_slot_once(
    app: Any, client: TestClient, settings: Settings, store: Any
) -> None:
    deploy(app, SHOP, OTHER)
    job = Recorder()
    first, second = scheduler(settings, store, job), scheduler(settings, store, job)

    async def rounds() -> None:
        for now in (T0, T0 + timedelta(minutes=1), T0 + timedelta(hours=1)):
            for worker in (first, second, second, first):
                await worker.tick(now)
            await first.drain()
            await second.drain()

    asyncio.run(rounds())
    ran = sorted((run.project_id, run.slot) for run in job.runs)
    slots = [T0, T0 + timedelta(hours=1)]
    assert ran == sorted((p, s) for p in ("other", "shop") for s in slots)
    recorded = rows(store)
    assert [(r.status, r.attempts) for r in recorded] == [("finished", 1)] * 4
    assert all(r.outcome == {"project": r.project_id, "slot": r.slot.isoformat()} for r in recorded)


@BOTH
def test_a_holder_past_its_lease_is_fenced_and_its_successor_kept(
    app: Any, client: TestClient, settings: Settings, store: Any
) -> None:
    deploy(app, SHOP)
    slow, quick = Recorder(), Recorder()
    first = scheduler(settings, store, slow)
    second = scheduler(settings, store, quick)

    async def scenario() -> None:
        slow.release = asyncio.Event()
        assert len(await first.tick(T0)) == 1  # holds the slot, then stalls (no renewal in time)
        assert await second.tick(T0 + timedelta(seconds=1)) == []  # the lease is live
        later = T0 + timedelta(seconds=LEASE_S + 1)
        assert len(await second.tick(later)) == 1  # the lease ran out: taken over
        await second.drain()
        slow.release.set()
        await first.drain()

    asyncio.run(scenario())
    (row,) = rows(store)
    assert (row.status, row.attempts, row.fence) == ("finished", 2, 2)
    assert len(slow.runs) == len(quick.runs) == 1
    assert row.outcome == {"project": "shop", "slot": T0.isoformat()}  # the successor's


@BOTH
def test_a_failing_run_is_recorded_and_the_next_slot_runs(
    app: Any, client: TestClient, settings: Settings, store: Any
) -> None:
    deploy(app, SHOP)
    job = Recorder(fail=True)
    worker = scheduler(settings, store, job)

    async def scenario() -> None:
        await worker.tick(T0)
        await worker.drain()
        job.fail = False
        await worker.tick(T0 + timedelta(hours=1))
        await worker.drain()

    asyncio.run(scenario())
    failed, finished = rows(store)
    assert (failed.status, failed.error) == ("failed", "ValueError: the store said no")
    assert finished.status == "finished"


def wait_for(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(scheduler_poll_seconds=0.05)


@BOTH
def test_the_jobs_api_lists_triggers_and_reads_runs_per_project(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    keys.project("other")
    admin, analyst = keys.headers(["admin"], "shop"), keys.headers(["analyst"], "shop")
    trigger = "/v1/jobs/retention.apply/runs"
    assert client.post(trigger, headers=admin).status_code == 409  # nothing deployed yet
    deploy(app, SHOP, OTHER)

    listed = client.get("/v1/jobs", headers=analyst)
    assert listed.status_code == 200, listed.text
    jobs = listed.json()["jobs"]
    assert {j["name"] for j in jobs} == {
        "retention.apply",
        "features.batch",
        "quality.anomalies",
        "quality.drift",
        "quality.consistency",
        "quality.notify",
        "reconciliation.daily",
        "quality.rules",
    }
    job = next(j for j in jobs if j["name"] == "retention.apply")
    assert (job["name"], job["every_seconds"], job["last_run"]) == ("retention.apply", 3600, None)
    assert client.post(trigger, headers=analyst).status_code == 403  # config:read only
    unknown = client.post("/v1/jobs/nope.nothing/runs", headers=admin)
    assert unknown.status_code == 404
    assert "retention.apply" in unknown.json()["detail"]

    queued = client.post(trigger, headers=admin)
    assert queued.status_code == 202, queued.text
    url = queued.headers["location"]
    assert url == f"/v1/jobs/runs/{queued.json()['run_id']}"
    done = wait_for(
        lambda: (r := client.get(url, headers=admin).json())["status"] == "finished" and r,
        "the manual run",
    )
    assert done["manual"] is True
    assert done["outcome"]["deleted"] == {"analytics": 0, "event_log": 0, "data_lake": 0}
    listed_after = client.get("/v1/jobs", headers=admin).json()["jobs"]
    retention = next(j for j in listed_after if j["name"] == "retention.apply")
    assert retention["last_run"]["id"] > 0
    page = client.get("/v1/jobs/runs?job=retention.apply&limit=1", headers=admin).json()
    assert len(page["items"]) == 1

    other = keys.headers(["admin"], "other")
    assert client.get(url, headers=other).status_code == 404  # another project's run
    theirs = client.get("/v1/jobs/runs", headers=other).json()["items"]
    assert all(run["project_id"] == "other" for run in theirs)
    trail = client.get("/v1/audit?action=trigger", headers=admin).json()["entries"]
    assert [e["detail"]["run_id"] for e in trail] == [queued.json()["run_id"]]


def test_the_catalog_of_api_processes_is_what_workers_run(app: Any, client: TestClient) -> None:
    running: Scheduler = app.state.dataintel.port(SCHEDULER)
    settings = app.state.dataintel.settings
    assert [(job.name, job.description, job.every) for job in running.jobs.values()] == [
        (info.name, info.description, info.every) for info in job_catalog(settings)
    ]


def test_run_bounds_are_validated(app: Any, client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    admin = keys.headers(["admin"], "shop")
    for path in ("/v1/jobs/runs/0", "/v1/jobs/runs/99999999999999999999", "/v1/jobs/runs?limit=0"):
        assert client.get(path, headers=admin).status_code == 422, path
    assert client.get("/v1/jobs/runs/12345", headers=admin).status_code == 404
    assert repo.slot_key(T0) == "2031-01-06T12:00:00Z"


@BOTH
def test_pruning_counts_the_keep_period_on_the_real_clock(
    app: Any, client: TestClient, settings: Settings, store: Any
) -> None:
    """A tick's ``now`` is the slot clock (tests move it); a run's ``created_at`` is the wall
    clock: a fresh scheduler ticking far ahead must not prune runs created moments ago."""
    deploy(app, SHOP)
    job = Recorder()

    async def scenario() -> None:
        worker = scheduler(settings, store, job)
        await worker.tick(T0)
        await worker.drain()
        await scheduler(settings, store, job).tick(T0 + timedelta(days=365))

    asyncio.run(scenario())
    # T0's run survives (the later scheduler may also have run its own slot meanwhile)
    assert T0 in [r.slot for r in rows(store) if r.status == "finished"]
