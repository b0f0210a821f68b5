"""A shop on real REES46 events plus a few platform events (prediction, intervention), on
the analytics engine of the test (DuckDB or chDB), and how a test damages a store and runs
the reconciliation job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.api.state import ANALYTICS, EVENTLOG, ONLINE
from dataintel.config.deployments.active import CONFIGS
from dataintel.features.online.engine import RECOMPUTE
from dataintel.model.jobs import JobRun
from dataintel.reconciliation.jobs import DAILY, reconciliation_jobs
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.metadata.types import utcnow
from tests.conftest import Keys, apply_yaml
from tests.gdpr.conftest import REES46_SHOP, rees46_events

EVENTS = 1500
SHOP = """
project: {id: shop, name: Shop}
templates: [platform]
analytics: {revenue_field: price, cart_events: [cart, cart_add]}"""
SHOP += REES46_SHOP
OTHER = """
project: {id: other, name: Other}
pipelines:
  - id: web
    name: Web
    events: [{name: view}, {name: purchase, fields: [{name: revenue, type: number}]}]
"""


def platform_events() -> list[dict[str, Any]]:
    """A cart with its prediction and intervention; a prediction whose cart has no cart
    event; an intervention whose cart has no prediction."""
    now = utcnow().isoformat()
    prediction = {"probability": 0.7, "model_version": "m1"}
    intervention = {"channel": "email", "action": "discount", "status": "sent"}
    rows: list[tuple[str, str, dict[str, Any]]] = [
        ("cart_add", "pc1", {"product_id": "sku-1", "price": 3.5}),
        ("prediction", "pc1", prediction),
        ("prediction", "pc2", prediction),
        ("intervention", "pc1", {**intervention, "intervention_id": "i1"}),
        ("intervention", "pc3", {**intervention, "intervention_id": "i2"}),
    ]
    return [
        {
            "event_id": f"p{i}",
            "event": name,
            "timestamp": now,
            "user_id": "platform-user",
            "cart_id": cart,
            "properties": props,
        }
        for i, (name, cart, props) in enumerate(rows)
    ]


@dataclass
class Shop:
    client: TestClient
    app: Any
    keys: Keys
    web: list[dict[str, Any]]
    platform: list[dict[str, Any]]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.web + self.platform

    @property
    def analytics(self) -> AnalyticsStore:
        store: AnalyticsStore = self.app.state.dataintel.port(ANALYTICS)
        return store

    def send(self, project: str, pipeline: str, events: list[dict[str, Any]]) -> None:
        headers = self.keys.headers(["ingest"], project)
        for start in range(0, len(events), 1000):
            chunk = events[start : start + 1000]
            resp = self.client.post(
                f"/ingest/{project}/{pipeline}/batch?wait=processed", json=chunk, headers=headers
            )
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["accepted"] == len(chunk), body["items"][:3]
            assert body["processed"] is True

    def reconcile(
        self, run_id: int, project: str = "shop", online_ttl: timedelta | None = None
    ) -> dict[str, Any]:
        """One run of reconciliation.daily, as the scheduler runs it (yesterday and today)."""
        state = self.app.state.dataintel
        (job,) = reconciliation_jobs(
            state.port(EVENTLOG),
            state.port(ANALYTICS),
            state.port(ONLINE),
            state.port(RECOMPUTE),
            state.sessions,
            state.port(CONFIGS),
            online_ttl=online_ttl,
        )
        assert job.name == DAILY
        run = JobRun(run_id, DAILY, project, utcnow())
        outcome: dict[str, Any] = self.client.portal.call(job.run, run)  # type: ignore[union-attr]
        return outcome


def delete_rows(store: AnalyticsStore, project: str, event_ids: list[str]) -> None:
    """Damage: rows vanish from the analytics store behind its back (positions unchanged)."""
    if store.dialect == "duckdb":
        with store._lock:  # type: ignore[attr-defined]
            store._db.execute(  # type: ignore[attr-defined]
                "DELETE FROM events WHERE project_id = ? AND list_contains(?, event_id)",
                [project, event_ids],
            )
        return
    quoted = ", ".join(f"'{i}'" for i in event_ids)
    store._engine.command(  # type: ignore[attr-defined]
        f"ALTER TABLE events DELETE WHERE project_id = '{project}' "
        f"AND event_id IN ({quoted}) SETTINGS mutations_sync = 2"
    )


@pytest.fixture
def shop(app: Any, client: TestClient, keys: Keys) -> Shop:
    keys.project("shop")
    apply_yaml(app, SHOP)
    # Ids of their own ("rc…"): the GDPR tests send the same REES46 rows as "r…" through
    # Kafka, whose dedup keys (project/event id) live in the Redis every worker shares.
    web = [{**e, "event_id": "rc" + e["event_id"][1:]} for e in rees46_events(EVENTS)]
    found = Shop(client, app, keys, web, platform_events())
    found.send("shop", "web", found.web)
    found.send("shop", "platform", found.platform)
    return found
