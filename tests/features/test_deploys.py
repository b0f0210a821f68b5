"""Deploys, rollbacks and re-deploys through HTTP, on both online stores (embedded, Redis):
a version that becomes active again is rebuilt from history before it is served, a read
right after ``?wait=processed`` sees the event even right after a deploy, and backfill
progress counts what it scans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Keys, apply_yaml
from tests.features.conftest import Tenant

from dataintel.auth.permissions import Role
from dataintel.main import create_app
from dataintel.settings import Settings

V1 = """
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields: [{name: price, type: number, required: true}]
features:
  - {name: spend, pipeline_id: web, source_event: cart_add, aggregation: SUM, field: price,
     windows: [24h]}
"""
V2 = V1.replace("windows: [24h]}", "windows: [24h, 7d]}")
BOTH_KEYS = (
    V1
    + """  - {name: adds, pipeline_id: web, source_event: cart_add, aggregation: COUNT,
     windows: [1h]}
  - {name: cart_adds, pipeline_id: web, source_event: cart_add, entity_key: cart_id,
     aggregation: COUNT, windows: [1h]}
"""
)


@pytest.fixture
def app(make_settings: Any, online_url: str | None) -> Any:
    settings: Settings = make_settings(online_url=online_url)
    return create_app(settings)


class Shop(Tenant):
    def __init__(self, app: Any, client: TestClient, keys: Keys) -> None:
        super().__init__(app, client, keys, "shop")
        self.admin = keys.headers([Role.ADMIN], "shop")
        self.n = 0

    def deploy(self, text: str) -> None:
        apply_yaml(self.app, text)

    def send(self, price: float, user: str = "u1", cart: str = "c1") -> None:
        self.n += 1
        event = {
            "event_id": f"e{self.n}",
            "event": "cart_add",
            "timestamp": datetime.now(UTC).isoformat(),
            "user_id": user,
            "cart_id": cart,
            "properties": {"price": price},
        }
        self.ingest_batch([event])

    def spend(self) -> tuple[Any, dict[str, Any]]:
        body = self.get("/features/shop/users/u1", features="spend_24h")
        return body["values"]["spend_24h"], body["status"]

    def historical(self) -> Any:
        now = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        body = {"rows": [{"entity_id": "u1", "timestamp": now}], "features": ["spend_24h"]}
        return self.post("/v1/features/historical", body)["rows"][0]["spend_24h"]


@pytest.fixture
def shop(app: Any, client: TestClient, keys: Keys) -> Shop:
    return Shop(app, client, keys)


def test_a_rolled_back_version_is_rebuilt_before_it_is_served(shop: Shop) -> None:
    shop.deploy(V1)
    shop.send(1)
    assert shop.spend() == (1.0, {})
    shop.deploy(V2)  # spend@2: its windows changed
    shop.send(10)
    assert shop.spend() == (11.0, {})
    resp = shop.client.post(
        "/api/v1/projects/shop/deployments/1/rollback", json={}, headers=shop.admin
    )
    assert resp.status_code == 201, resp.text
    # spend@1 missed the event of 10 while v2 was active: never served stale
    value, status = shop.spend()
    assert (value, status) in [(11.0, {}), (None, {"spend_24h": "building"})]
    shop.send(100)  # waits for the rebuild too
    assert shop.spend() == (111.0, {})
    assert shop.historical() == 111.0
    # and a re-deploy of v2 (spend@2 missed the 100 meanwhile) is rebuilt the same way
    shop.deploy(V2)
    shop.send(1000)
    assert shop.spend() == (1111.0, {})


def test_wait_processed_right_after_a_deploy_sees_the_event(shop: Shop) -> None:
    shop.deploy(V1)
    shop.send(1)
    shop.deploy(V2)  # no wait for the backfill: the ingest call below must wait for it
    shop.send(10)
    assert shop.spend() == (11.0, {})


def test_backfill_progress_counts_what_it_scans(shop: Shop) -> None:
    shop.deploy(V1)
    for i in range(5):
        shop.send(i, user=f"u{i % 2}", cart=f"c{i % 3}")
    shop.deploy(BOTH_KEYS)  # a user and a cart feature of the same event: two scans
    shop.wait_ready()
    resp = shop.client.get("/api/v1/projects/shop/deployments/2", headers=shop.admin)
    progress = resp.json()["backfill"]
    assert progress["state"] == "done"
    assert set(progress["fields"]) == {"adds@1", "cart_adds@1"}
    # every event is scanned once per group (user_id, cart_id)
    assert progress["events_done"] == progress["events_total"] == 10


TIMES = V1.replace(
    "fields: [{name: price, type: number, required: true}]",
    "fields: [{name: price, type: number, required: true}, {name: seen, type: timestamp}]",
) + (
    """  - {name: lo, pipeline_id: web, source_event: cart_add, aggregation: MIN, field: seen,
     windows: [1h, lifetime]}
  - {name: hi, pipeline_id: web, source_event: cart_add, aggregation: MAX, field: seen,
     windows: [1h, lifetime]}
  - {name: latest, pipeline_id: web, source_event: cart_add, aggregation: MAX,
     field: timestamp, windows: [lifetime]}
"""
)


def test_timestamps_merge_as_instants_in_the_store(shop: Shop) -> None:
    """MIN/MAX states of timestamps merge across micro-batches in the store (Python and the
    Redis script alike) as instants, whatever form each event sent."""
    shop.deploy(TIMES)
    seen: list[Any] = [
        "2026-03-01T10:00:00.5+01:00",  # 09:00:00.5Z
        1772359200,  # 2026-03-01T10:00:00Z (epoch s)
        "2026-03-01T08:59:59",  # naive: UTC, the earliest
        1772362800000,  # 2026-03-01T11:00:00Z (epoch ms), the latest
        "2026-03-01T09:00:00Z",
    ]
    for i, value in enumerate(seen):  # one micro-batch each
        shop.n += 1
        stamp = (datetime.now(UTC) - timedelta(minutes=5 - i)).replace(microsecond=1000 * i)
        event = {
            "event_id": f"e{shop.n}",
            "event": "cart_add",
            "timestamp": stamp.isoformat(),
            "user_id": "u1",
            "properties": {"price": 1, "seen": value},
        }
        resp = shop.client.post(
            "/ingest/shop/web/batch?wait=processed", json=[event], headers=shop.ingest
        )
        assert resp.json()["processed"] is True, resp.text
    resp = shop.client.get("/features/shop/users/u1", headers=shop.service)
    values = resp.json()["values"]
    assert values["lo_1h"] == values["lo_lifetime"] == "2026-03-01T08:59:59.000000Z"
    assert values["hi_1h"] == values["hi_lifetime"] == "2026-03-01T11:00:00.000000Z"
    assert values["latest_lifetime"] == stamp.isoformat(timespec="microseconds").replace(
        "+00:00", "Z"
    )
