"""The serving API through HTTP on the real embedded stack: ingest with ?wait=processed, then
read user and cart vectors, definitions, backfill of a new feature, recompute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Keys, apply_yaml, assert_problem
from tests.features.conftest import Tenant, iso

from dataintel.auth.permissions import Role

STORE = """
project: {id: store, name: Store}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields:
          - {name: sku, type: string, required: true}
          - {name: price, type: number, required: true}
      - name: purchase
        fields: [{name: revenue, type: number, required: true}]
features:
  - {name: adds, pipeline_id: web, source_event: cart_add, aggregation: COUNT,
     windows: [5m, 1h, 24h, lifetime]}
  - {name: spend, pipeline_id: web, source_event: cart_add, aggregation: SUM, field: price,
     windows: [1h, 7d]}
  - {name: avg_price, pipeline_id: web, source_event: cart_add, aggregation: AVG, field: price,
     windows: [1h]}
  - {name: skus, pipeline_id: web, source_event: cart_add, aggregation: COUNT_DISTINCT,
     field: sku, windows: [24h]}
  - {name: last_sku, pipeline_id: web, source_event: cart_add, aggregation: LAST, field: sku,
     windows: [24h]}
  - {name: cart_value, pipeline_id: web, source_event: cart_add, entity_key: cart_id,
     aggregation: SUM, field: price, windows: [1h, lifetime]}
  - {name: orders, pipeline_id: web, source_event: purchase, aggregation: COUNT,
     windows: [30d]}
derived:
  - {name: avg_add, expression: "spend_7d / adds_lifetime"}
  - {name: avg_add_x2, expression: "avg_add * 2"}
  - {name: minutes_since_sku, expression: "seconds_since(last_sku_24h) / 60"}
  - {name: broken_at_runtime, expression: "last_sku_24h + 1"}
"""
EXTRA_FEATURE = """
  - {name: max_price, pipeline_id: web, source_event: cart_add, aggregation: MAX, field: price,
     windows: [24h]}
"""


def add(i: int, user: str, cart: str, sku: str, price: float, ago: timedelta) -> dict[str, Any]:
    return {
        "event_id": f"a{i}",
        "event": "cart_add",
        "timestamp": iso(datetime.now(UTC) - ago),
        "user_id": user,
        "cart_id": cart,
        "properties": {"sku": sku, "price": price},
    }


class Store(Tenant):
    def __init__(self, app: Any, client: TestClient, keys: Keys) -> None:
        super().__init__(app, client, keys, "store", STORE)


@pytest.fixture
def store(app: Any, client: TestClient, keys: Keys) -> Store:
    s = Store(app, client, keys)
    s.wait_ready()
    s.ingest_batch(
        [
            add(1, "u1", "c1", "s1", 10.0, timedelta(minutes=2)),
            add(2, "u1", "c1", "s2", 20.0, timedelta(minutes=30)),
            add(3, "u1", "c2", "s1", 30.5, timedelta(hours=3)),
            add(4, "u2", "c3", "s9", 5.0, timedelta(days=2)),
        ]
    )
    return s


def test_user_vector_is_exact_and_explains_itself(store: Store) -> None:
    body = store.get("/features/store/users/u1")
    v = body["values"]
    assert (v["adds_5m"], v["adds_1h"], v["adds_24h"], v["adds_lifetime"]) == (1, 2, 3, 3)
    assert v["spend_1h"] == pytest.approx(30.0)
    assert v["spend_7d"] == pytest.approx(60.5)
    assert v["avg_price_1h"] == pytest.approx(15.0)
    assert v["skus_24h"] == 2
    assert v["last_sku_24h"] == "s1"  # the latest add (2 min ago)
    assert v["orders_30d"] == 0
    assert body["status"] == {"orders_30d": "no_data", "broken_at_runtime": "error"}
    assert body["entity_key"] == "user_id"
    assert body["entity_id"] == "u1"
    assert set(body["sources"]) == {"web.cart_add"}
    assert body["versions"]["adds"] == 1
    as_of = datetime.fromisoformat(body["as_of"])
    assert abs((datetime.now(UTC) - as_of).total_seconds()) < 5


def test_selection_by_feature_or_value_name(store: Store) -> None:
    body = store.get("/features/store/users/u1", features="adds_1h,spend")
    assert set(body["values"]) == {"adds_1h", "spend_1h", "spend_7d"}
    resp = store.client.get(
        "/features/store/users/u1", params={"features": "nope_1h"}, headers=store.service
    )
    assert_problem(resp, 422, field="/query/features")


def test_batch_of_users_in_one_call(store: Store) -> None:
    resp = store.client.post(
        "/features/store/users/batch",
        json={"user_ids": ["u1", "u2", "ghost"], "features": ["adds_lifetime", "spend_7d"]},
        headers=store.service,
    )
    assert resp.status_code == 200, resp.text
    rows = resp.json()["results"]
    assert [r["entity_id"] for r in rows] == ["u1", "u2", "ghost"]
    assert [r["values"]["adds_lifetime"] for r in rows] == [3, 1, 0]
    assert rows[1]["values"]["spend_7d"] == pytest.approx(5.0)
    assert rows[2]["status"] == {"adds_lifetime": "no_data", "spend_7d": "no_data"}
    too_many = store.client.post(
        "/features/store/users/batch",
        json={"user_ids": [str(i) for i in range(1001)]},
        headers=store.service,
    )
    assert_problem(too_many, 422, field="/body/user_ids")


def test_cart_vector_carries_its_owner_under_user_prefix(store: Store) -> None:
    body = store.get("/v1/features/c1")
    v = body["values"]
    assert v["cart_value_1h"] == pytest.approx(30.0)
    assert v["cart_value_lifetime"] == pytest.approx(30.0)
    assert v["user.adds_lifetime"] == 3
    assert v["user.user_id"] == "u1"
    only = store.get("/v1/features/c1", features="cart_value_1h,user.adds_5m")
    assert set(only["values"]) == {"cart_value_1h", "user.adds_5m", "user.user_id"}
    unknown = store.get("/v1/features/nocart")
    assert unknown["status"]["cart_value_1h"] == "no_data"
    # no owner: the user part is an unknown user's (empty-window values, no_data)
    assert unknown["values"]["user.adds_5m"] == 0
    assert unknown["values"]["user.spend_1h"] == 0.0
    assert unknown["values"]["user.last_sku_24h"] is None
    assert unknown["values"]["user.user_id"] is None
    assert unknown["status"]["user.adds_5m"] == "no_data"


def test_definitions_show_windows_granularities_and_versions(store: Store) -> None:
    body = store.get("/v1/features/definitions")
    adds = next(f for f in body["features"] if f["name"] == "adds")
    by_window = {w["window"]: w for w in adds["windows"]}
    assert by_window["5m"]["granularity"] == "1s"
    assert by_window["24h"]["granularity"] == "1m"  # 86400/200 = 432 s → 1 min
    assert by_window["lifetime"]["granularity"] is None
    spend = next(f for f in body["features"] if f["name"] == "spend")
    assert {w["window"]: w["granularity_seconds"] for w in spend["windows"]} == {
        "1h": 1,
        "7d": 60,
    }
    assert (adds["version"], adds["status"], adds["kind"]) == (1, "ready", "aggregation")


def test_a_new_feature_is_backfilled_from_history_before_it_is_served(store: Store) -> None:
    apply_yaml(store.app, STORE.replace("\nderived:", EXTRA_FEATURE.rstrip() + "\nderived:"))
    body = store.wait_ready()
    assert any(f["name"] == "max_price" for f in body["features"])
    v = store.get("/features/store/users/u1", features="max_price")["values"]
    assert v["max_price_24h"] == pytest.approx(30.5)
    admin = store.keys.headers([Role.ADMIN], "store")
    deployment = store.client.get("/api/v1/projects/store/deployments/2", headers=admin).json()
    progress = deployment["backfill"]
    assert progress["state"] == "done"
    assert "max_price@1" in progress["fields"]
    assert progress["events_done"] == progress["events_total"] >= 4
    assert progress["entities"] >= 2
    # and the stream keeps it current after the backfill
    store.ingest_batch([add(9, "u1", "c1", "s3", 99.0, timedelta(seconds=1))])
    v = store.get("/features/store/users/u1", features="max_price,adds_5m")["values"]
    assert v["max_price_24h"] == pytest.approx(99.0)
    assert v["adds_5m"] == 2


def test_recompute_rebuilds_from_the_analytics_store(store: Store) -> None:
    resp = store.client.post(
        "/v1/features/compute",
        json={"entity_key": "user_id", "entity_ids": ["u1", "u2"], "features": ["adds"]},
        headers=store.service,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["written"] is True
    assert [r["values"]["adds_lifetime"] for r in body["results"]] == [3, 1]


def test_another_tenant_sees_nothing(store: Store) -> None:
    store.keys.project("other")
    other = store.keys.headers([Role.SERVICE], "other")
    resp = store.client.get("/features/store/users/u1", headers=other)
    assert_problem(resp, 404)
    mine = store.client.get("/v1/features/c1", headers=other)
    assert mine.status_code == 200
    assert mine.json()["values"] == {}


def test_ingest_role_cannot_read_features(store: Store) -> None:
    resp = store.client.get("/features/store/users/u1", headers=store.ingest)
    assert_problem(resp, 403)


def _page(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    resp = store.client.post("/v1/features/batch-compute", json=body, headers=store.service)
    assert resp.status_code == 200, resp.text
    page: dict[str, Any] = resp.json()
    return page


def test_batch_compute_by_ids_activity_and_abandoned_carts(store: Store) -> None:
    first = _page(store, {"select": {"type": "ids", "ids": ["u2", "u1"]}, "limit": 1})
    assert [r["entity_id"] for r in first["results"]] == ["u1"]
    assert first["results"][0]["values"]["adds_lifetime"] == 3
    second = _page(
        store,
        {"select": {"type": "ids", "ids": ["u2", "u1"]}, "limit": 1, "cursor": "u1"},
    )
    assert [r["entity_id"] for r in second["results"]] == ["u2"]
    # as of a past instant: u1's add 2 minutes ago is not there yet
    past = iso(datetime.now(UTC) - timedelta(minutes=10))
    then = _page(store, {"select": {"type": "ids", "ids": ["u1"]}, "as_of": past})
    assert then["results"][0]["values"]["adds_lifetime"] == 2
    now = datetime.now(UTC)
    active = _page(
        store,
        {
            "select": {
                "type": "active",
                "start": iso(now - timedelta(hours=1)),
                "end": iso(now + timedelta(minutes=1)),
            },
            "features": ["adds"],
        },
    )
    assert [r["entity_id"] for r in active["results"]] == ["u1"]
    carts = _page(
        store,
        {
            "entity_key": "cart_id",
            "select": {"type": "abandoned_carts", "idle_minutes": 60},
        },
    )
    # c1's latest add is 2 minutes old (not idle); c2 (3 h) and c3 (2 days) are abandoned
    assert [r["entity_id"] for r in carts["results"]] == ["c2", "c3"]
    assert carts["results"][0]["values"]["cart_value_lifetime"] == pytest.approx(30.5)
    bad = store.client.post(
        "/v1/features/batch-compute",
        json={"select": {"type": "abandoned_carts", "idle_minutes": 5}},
        headers=store.service,
    )
    assert_problem(bad, 422, field="/body/entity_key")


def test_derived_features_are_computed_from_the_vector(store: Store) -> None:
    body = store.get("/features/store/users/u1")
    v = body["values"]
    assert v["avg_add"] == pytest.approx(60.5 / 3)
    assert v["avg_add_x2"] == pytest.approx(2 * 60.5 / 3)
    assert 1.9 < v["minutes_since_sku"] < 2.5  # the last add was 2 minutes ago
    assert v["broken_at_runtime"] is None
    assert body["status"]["broken_at_runtime"] == "error"
    assert body["versions"]["avg_add"] == 1
    only = store.get("/features/store/users/u1", features="avg_add_x2")["values"]
    assert only["avg_add_x2"] == pytest.approx(2 * 60.5 / 3)
    ghost = store.get("/features/store/users/ghost", features="avg_add")
    assert ghost["values"]["avg_add"] is None  # 0 / 0 -> null
    definitions = store.get("/v1/features/definitions")["features"]
    derived = {f["name"]: f for f in definitions if f["kind"] == "derived"}
    assert derived["avg_add"]["expression"] == "spend_7d / adds_lifetime"
