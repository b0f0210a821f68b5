"""The consistency monitor on the embedded stack: events go through ingest and the stream
processor into both the online store and the analytics store; served values equal their
recomputation (no alert); an entity's online state damaged on purpose is caught (alert)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.api.state import ANALYTICS, ONLINE
from dataintel.config.deployments.active import CONFIGS
from dataintel.features.serving.service import SERVER
from dataintel.quality.consistency import ConsistencyMonitor
from dataintel.settings import Settings
from dataintel.storage.metadata.types import utcnow
from dataintel.storage.online.port import EntityRef
from tests.conftest import Keys, apply_yaml

YAML = """
project: {id: shop, name: Shop}
pipelines: [{id: web, name: Web, events: [{name: view, fields: [{name: price, type: number}]}]}]
features:
  - {name: views, pipeline_id: web, source_event: view, aggregation: COUNT, windows: [1h, 1d]}
  - {name: spend, pipeline_id: web, source_event: view, aggregation: SUM, field: price, windows: [1d]}
"""  # noqa: E501


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(scheduler_poll_seconds=0.05)


def test_served_values_match_and_a_damaged_entity_is_caught(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    apply_yaml(app, YAML)
    admin = keys.headers(["admin"], "shop")
    now = utcnow()
    events = [
        {
            "event": "view",
            "timestamp": (now - timedelta(minutes=90 - i)).isoformat(),
            "user_id": f"u{i % 7}",
            "properties": {"price": 1.5 * i},
        }
        for i in range(60)
    ]
    sent = client.post("/ingest/shop/web/batch?wait=processed", json=events, headers=admin)
    assert sent.status_code == 200, sent.text
    assert sent.json()["processed"] is True
    state = app.state.dataintel
    configs = state.port(CONFIGS)
    monitor = ConsistencyMonitor(
        state.sessions,
        state.port(ANALYTICS),
        state.port(SERVER),
        lambda p: configs.get(p).snapshot,
        sample=5,
    )

    def run() -> dict[str, Any]:
        outcome: dict[str, Any] = client.portal.call(monitor.run, "shop", utcnow())  # type: ignore[union-attr]
        return dict(outcome["entity_keys"]["user_id"])

    clean = run()
    assert clean == {"entities": 5, "compared": 15, "mismatches": 0, "features": []}
    alerts = client.get("/v1/quality/alerts?kind=consistency", headers=admin).json()["alerts"]
    assert alerts == []

    state.port(ONLINE).delete_entities([EntityRef("shop", "user_id", "u3")])  # the damage
    broken = run()
    assert broken["mismatches"] == 3  # views_1h, views_1d, spend_1d of u3
    assert broken["features"] == ["spend_1d", "views_1d", "views_1h"]
    (alert,) = client.get("/v1/quality/alerts?kind=consistency", headers=admin).json()["alerts"]
    assert alert["status"] == "open"
    assert alert["severity"] == "critical"
    assert "u3" not in str(alert)  # names features and counts, no entity id


def test_the_scheduled_check_reads_both_sides_between_two_batches(
    app: Any, client: TestClient, keys: Keys
) -> None:
    """The job reads served and recomputed values while it holds the processor's lock: a
    batch half applied (analytics store written, online state not yet) is never compared.
    Holding the lock here, as a batch would, keeps the triggered run from reading."""
    import asyncio
    import time

    from dataintel.features.online.engine import RECOMPUTE

    keys.project("shop")
    apply_yaml(app, YAML)
    admin = keys.headers(["admin"], "shop")
    event = {"event": "view", "timestamp": utcnow().isoformat(), "user_id": "u1"}
    sent = client.post("/ingest/shop/web/batch?wait=processed", json=[event], headers=admin)
    assert sent.json()["processed"] is True
    lock: asyncio.Lock = app.state.dataintel.port(RECOMPUTE).lock
    client.portal.call(lock.acquire)  # type: ignore[union-attr]
    try:
        run = client.post("/v1/jobs/quality.consistency/runs", headers=admin).json()["run_id"]
        time.sleep(1.5)  # the scheduler (polling every 50 ms) has claimed it by now
        held = client.get(f"/v1/jobs/runs/{run}", headers=admin).json()
        assert held["status"] == "running", held  # waiting for the batch to end
    finally:
        client.portal.call(lock.release)  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    while (done := client.get(f"/v1/jobs/runs/{run}", headers=admin).json())[
        "status"
    ] != "finished":
        assert time.monotonic() < deadline, done
        time.sleep(0.05)
    assert done["outcome"]["entity_keys"]["user_id"]["mismatches"] == 0
