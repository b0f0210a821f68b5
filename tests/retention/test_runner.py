"""The retention runner's bookkeeping on the embedded stack (the scheduler runs its job
once per slot: tests/scheduler/): a run records its outcome, next slot and lease in
retention_status, a policy that deletes nothing never runs, a live lease of another run is
respected and an expired one taken over, and a failing store is recorded (status, reason,
audit) without stopping the others."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from dataintel.config.deployments.active import CONFIGS
from dataintel.retention.runner import RETENTION_RUNNER, RetentionRunner
from dataintel.storage.blob.local import LocalBlobStore
from dataintel.storage.metadata.retention_models import RetentionStatus
from dataintel.storage.metadata.types import utcnow
from tests.conftest import Keys, apply_yaml

SHOP = """
project: {id: shop, name: Shop}
pipelines: [{id: web, name: Web, events: [{name: view}]}]
"""
KEEP_ALL = "\nretention: {event_overrides: {view: null}}\n"
POLICY = "\nretention: {events_days: 30, dead_letters_days: 7}\n"
BOTH = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def runner(app: Any, client: TestClient) -> RetentionRunner:
    found: RetentionRunner = app.state.dataintel.port(RETENTION_RUNNER)
    return found


def tick(client: TestClient, runner: RetentionRunner) -> dict[str, Any]:
    """The project's run, as the scheduled job starts it: {"shop": outcome}, or {}."""
    outcome = client.portal.call(runner.run, "shop", utcnow())  # type: ignore[union-attr]
    return {} if outcome is None else {"shop": outcome}


def deploy(app: Any, text: str) -> None:
    apply_yaml(app, text)
    app.state.dataintel.port(CONFIGS).invalidate()


@BOTH
def test_a_run_records_its_outcome_and_next_slot(
    app: Any, client: TestClient, keys: Keys, runner: RetentionRunner
) -> None:
    keys.project("shop")
    deploy(app, SHOP + KEEP_ALL)
    assert tick(client, runner) == {}  # a policy that deletes nothing never runs
    deploy(app, SHOP + POLICY)
    first = tick(client, runner)
    assert first["shop"].status == "finished"
    assert first["shop"].deleted == {
        "analytics": 0,
        "event_log": 0,
        "data_lake": 0,
        "dead_letters": 0,
    }
    assert set(tick(client, runner)) == {"shop"}  # when to run is the scheduler's call
    admin = keys.headers(["admin"], "shop")
    runs = client.get("/api/v1/projects/shop/retention/runs", headers=admin).json()
    assert runs["status"] == "finished"
    assert runs["policy_version"] == 2
    assert runs["next_run_at"] > runs["finished_at"]


@BOTH
def test_another_workers_live_lease_is_respected(
    app: Any, client: TestClient, keys: Keys, runner: RetentionRunner
) -> None:
    keys.project("shop")
    deploy(app, SHOP + POLICY)
    with app.state.dataintel.sessions.begin() as session:
        session.add(
            RetentionStatus(
                project_id="shop",
                next_run_at=utcnow() - timedelta(minutes=1),
                lease_owner="elsewhere:1",
                lease_expires_at=utcnow() + timedelta(minutes=5),
                deleted={},
            )
        )
    assert tick(client, runner) == {}
    with app.state.dataintel.sessions.begin() as session:
        expired = utcnow() - timedelta(seconds=1)
        session.execute(update(RetentionStatus).values(lease_expires_at=expired))
    assert set(tick(client, runner)) == {"shop"}  # the dead worker's run is taken over


def test_a_failing_store_is_recorded_and_the_others_run(
    app: Any, client: TestClient, keys: Keys, runner: RetentionRunner, tmp_path: Path
) -> None:
    keys.project("shop")
    deploy(app, SHOP + POLICY)
    broken = LocalBlobStore(tmp_path / "broken-lake")
    broken.put("_committed/partition=0/00000000000000000000-00000000000000000001.json", b"{")
    stores = dataclasses.replace(runner.stores, lake=broken)
    other = RetentionRunner(app.state.dataintel.settings, stores, runner.configs)
    outcome = client.portal.call(other.run, "shop", utcnow())  # type: ignore[union-attr]
    assert outcome is not None
    assert outcome.status == "failed"
    assert outcome.failed == ("data_lake",)
    assert set(outcome.deleted) == {"analytics", "event_log", "dead_letters"}
    admin = keys.headers(["admin"], "shop")
    runs = client.get("/api/v1/projects/shop/retention/runs", headers=admin).json()
    assert runs["status"] == "failed"
    assert runs["error"].startswith("data_lake: ")
    page = client.get("/v1/audit?action=retention_run", headers=admin).json()
    (entry,) = page["entries"]
    assert entry["actor"] == "retention"
    assert entry["detail"]["failed"] == ["data_lake"]
    assert "error" not in entry["detail"]  # counts and store names only
