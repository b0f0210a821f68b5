"""Retention end to end on the embedded stack (SQLite log, DuckDB, data lake on a local
directory), through the HTTP API: a policy PUT and deployed, events of 100 days ago and of
yesterday, an old dead letter and an old report; the scheduled runner deletes what expired
in every store, keeps the rest, records its counts in the audit trail, and the expired
values are gone from the bytes of every file under the data directory."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from dataintel.api.state import ANALYTICS, EVENTLOG
from dataintel.export.datalake.committed import read_events
from dataintel.settings import Settings
from dataintel.storage.blob.local import LocalBlobStore
from dataintel.storage.metadata.models import DeadLetter
from dataintel.storage.metadata.report_models import Report
from tests.conftest import Keys, apply_yaml

SHOP = """
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events:
      - name: view
        fields: &fields
          - {name: note, type: string}
          - {name: price, type: number}
      - {name: cart_add, fields: *fields}
      - {name: purchase, fields: *fields}
features:
  - {name: views, pipeline_id: web, source_event: view, aggregation: COUNT, windows: [lifetime]}
"""
GONE = "retention-expired-7d1c0e"  # in the expired events, the dead letter, the report
KEPT = "retention-kept-42aa9b"
NOW = datetime.now(UTC)
POLICY = {
    "events_days": 30,
    "event_overrides": {"purchase": 730},
    "dead_letters_days": 7,
    "reports_days": 7,
}


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(
        ingest_allowed_lateness_seconds=400 * 86400,
        retention_interval_seconds=0.2,
        scheduler_poll_seconds=0.05,
        datalake_url=f"file://{tmp_path / 'data' / 'lake'}",
        datalake_flush_seconds=0.1,
        report_poll_seconds=0.05,
    )


def event(event_id: str, name: str, days_ago: int, note: str) -> dict[str, Any]:
    when = NOW - timedelta(days=days_ago)
    return {
        "event_id": event_id,
        "event": name,
        "timestamp": when.isoformat(),
        "user_id": f"user-{event_id}",
        "properties": {"note": note, "price": 1.5},
    }


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def files_containing(root: Path, needle: str) -> list[str]:
    raw = needle.encode()
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and raw in p.read_bytes()
    )


def backdate(app: Any, days: int) -> None:
    """Make the dead letters and reports look ``days`` old."""
    then = NOW - timedelta(days=days)
    with app.state.dataintel.sessions.begin() as session:
        session.execute(update(DeadLetter).values(received_at=then))
        session.execute(update(Report).values(created_at=then))


def test_the_scheduled_runner_applies_the_deployed_policy_everywhere(
    app: Any, client: TestClient, keys: Keys, settings: Settings
) -> None:
    keys.project("shop")
    apply_yaml(app, SHOP)
    admin = keys.headers(["admin"], "shop")
    ingest = keys.headers(["ingest"], "shop")
    sent = [
        event("old-view", "view", 100, GONE),
        event("old-cart", "cart_add", 100, GONE),
        event("old-purchase", "purchase", 100, KEPT),  # its override keeps it two years
        event("new-view", "view", 1, KEPT),
    ]
    bad = {**event("bad", "view", 1, GONE), "properties": {"note": GONE, "price": "x"}}
    resp = client.post("/ingest/shop/web/batch?wait=processed", json=[*sent, bad], headers=ingest)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["accepted"], resp.json()["rejected"]) == (4, 1)
    asked = {"kind": "events", "params": {}, "format": "csv"}
    report = client.post("/v1/reports/generate", json=asked, headers=admin)
    assert report.status_code == 202, report.text
    report_url = f"/v1/reports/{report.json()['id']}"
    wait_for(lambda: client.get(report_url, headers=admin).status_code == 200, "the report")
    lake = LocalBlobStore(settings.data_dir / "lake")
    wait_for(lambda: read_events(lake, "shop").num_rows == 4, "the data lake export")
    backdate(app, 10)
    assert files_containing(settings.data_dir, GONE), "the marker is stored before retention"

    base = "/api/v1/projects/shop"
    assert client.put(f"{base}/retention", json=POLICY, headers=admin).status_code == 200
    assert client.post(f"{base}/deployments", headers=admin).status_code == 201

    def audited() -> list[dict[str, Any]]:
        page = client.get("/v1/audit?action=retention_run", headers=admin).json()
        return [e["detail"] for e in page["entries"]]

    wait_for(lambda: any(d["deleted"].get("analytics") for d in audited()), "a retention run")
    first = next(d for d in audited() if d["deleted"].get("analytics"))
    assert first["status"] == "finished", first
    assert first["deleted"] == {
        "analytics": 2,
        "event_log": 2,
        "data_lake": 1,
        "dead_letters": 1,
        "reports": 1,
    }
    jobs = client.get("/v1/jobs/runs?job=retention.apply", headers=admin).json()["items"]
    done = [run for run in jobs if run["status"] == "finished" and "deleted" in run["outcome"]]
    assert done, jobs  # the scheduler ran the job and recorded its outcome
    assert done[-1]["outcome"]["deleted"]["analytics"] == 2
    runs = client.get(f"{base}/retention/runs", headers=admin).json()
    assert runs["status"] in ("finished", "running")
    assert runs["policy"]["event_overrides"] == {"purchase": 730}

    analytics = app.state.dataintel.port(ANALYTICS)
    left = analytics.sql("SELECT event_id FROM events WHERE project_id = ?", ["shop"])
    assert sorted(left.column("event_id").to_pylist()) == ["new-view", "old-purchase"]
    log = app.state.dataintel.port(EVENTLOG)
    entries = client.portal.call(log.read, 0, 0, 100)  # type: ignore[union-attr]
    assert len(entries) == 2
    assert sorted(read_events(lake, "shop").column("event_id").to_pylist()) == [
        "new-view",
        "old-purchase",
    ]
    dead = client.get(f"{base}/pipelines/web/dead-letters", headers=admin).json()
    assert dead["items"] == []
    assert client.get(report_url, headers=admin).status_code == 410

    assert files_containing(settings.data_dir, GONE) == []
    assert files_containing(settings.data_dir, KEPT)
