"""Regression tests through HTTP for the features API's rules: timestamps aggregate as
instants, envelope fields are aggregation fields, one entity id rule everywhere (and every
valid id reachable), sources and no_data as of t, carts without an owner, bounded inputs,
and credentials spanning several projects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Keys, assert_problem
from tests.features.conftest import Tenant, iso

from dataintel.auth.permissions import Role

SHOP = """
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events:
      - name: view
        fields:
          - {name: seen_at, type: timestamp}
          - {name: product_id, type: string}
features:
  - {name: views, pipeline_id: web, source_event: view, aggregation: COUNT, windows: [1h]}
  - {name: first_seen, pipeline_id: web, source_event: view, aggregation: MIN, field: seen_at,
     windows: [1h]}
  - {name: last_seen, pipeline_id: web, source_event: view, aggregation: MAX, field: seen_at,
     windows: [1h]}
  - {name: latest_view, pipeline_id: web, source_event: view, aggregation: MAX,
     field: timestamp, windows: [1h]}
  - {name: carts, pipeline_id: web, source_event: view, aggregation: COUNT_DISTINCT,
     field: cart_id, windows: [1h]}
  - {name: viewers, pipeline_id: web, source_event: view, entity_key: product_id,
     aggregation: COUNT_DISTINCT, field: user_id, windows: [1h]}
  - {name: cart_users, pipeline_id: web, source_event: view, entity_key: cart_id,
     aggregation: COUNT_DISTINCT, field: user_id, windows: [1h]}
"""


class Shop(Tenant):
    def __init__(self, app: Any, client: TestClient, keys: Keys) -> None:
        super().__init__(app, client, keys, "shop", SHOP)
        self.n = 0

    def send(self, *events: dict[str, Any]) -> None:
        body = []
        for e in events:
            self.n += 1
            body.append({"event_id": f"e{self.n}", "event": "view", **e})
        result = self.ingest_batch(body)
        assert result["accepted"] == len(body), result


@pytest.fixture
def shop(app: Any, client: TestClient, keys: Keys) -> Shop:
    s = Shop(app, client, keys)
    s.wait_ready()
    return s


def test_min_max_of_timestamps_are_instants_online_and_offline(shop: Shop) -> None:
    # A fixed fraction, but never in the future of the serving clock (else the event at
    # ``now`` would not be in the window yet).
    now = (datetime.now(UTC) - timedelta(seconds=1)).replace(microsecond=574680)
    at = now - timedelta(minutes=5)
    shop.send(
        {
            "timestamp": iso(at),
            "user_id": "u1",
            "properties": {"seen_at": "2026-01-01T12:00:00+02:00"},
        },
        {"timestamp": iso(at), "user_id": "u1", "properties": {"seen_at": 1767261600}},  # 10:00Z
        {"timestamp": iso(now), "user_id": "u1", "properties": {"seen_at": 1767268800123}},
        {"timestamp": iso(now), "user_id": "u1", "properties": {}},
    )
    names = "first_seen_1h,last_seen_1h,latest_view_1h"
    online = shop.get("/features/shop/users/u1", features=names)["values"]
    want = {
        "first_seen_1h": "2026-01-01T10:00:00.000000Z",
        "last_seen_1h": "2026-01-01T12:00:00.123000Z",
        "latest_view_1h": iso(now),
    }
    assert online == want
    t = iso(datetime.now(UTC) + timedelta(seconds=1))
    batch = shop.post(
        "/v1/features/batch-compute",
        {
            "select": {"type": "ids", "ids": ["u1"]},
            "as_of": t,
            "features": ["first_seen", "last_seen", "latest_view"],
        },
    )
    assert {k: batch["results"][0]["values"][k] for k in want} == want
    rows = shop.post(
        "/v1/features/historical",
        {"rows": [{"entity_id": "u1", "timestamp": t}], "features": names.split(",")},
    )["rows"]
    assert {k: rows[0][k] for k in want} == want


def test_envelope_fields_are_aggregation_fields(shop: Shop) -> None:
    now = iso(datetime.now(UTC))
    shop.send(
        *[
            {"timestamp": now, "user_id": u, "cart_id": c, "properties": {"product_id": "p1"}}
            for u, c in [("u1", "c1"), ("u2", "c1"), ("u1", "c2"), ("u3", None)]
        ]
    )
    assert shop.get("/features/shop/users/u1", features="carts")["values"] == {"carts_1h": 2}
    cart = shop.get("/v1/features/c1", features="cart_users")["values"]
    assert cart["cart_users_1h"] == 2
    page = shop.post(
        "/v1/features/batch-compute",
        {"entity_key": "product_id", "select": {"type": "ids", "ids": ["p1"]}},
    )
    assert page["results"][0]["values"] == {"viewers_1h": 3}


def test_one_id_rule_and_every_valid_id_is_reachable(shop: Shop) -> None:
    now = iso(datetime.now(UTC))
    slashed, longest, too_long = "team/a b", "p" * 256, "p" * 300
    shop.send(
        {"timestamp": now, "user_id": slashed, "cart_id": "definitions", "properties": {}},
        {"timestamp": now, "user_id": "u9", "properties": {"product_id": longest}},
        {"timestamp": now, "user_id": "u9", "properties": {"product_id": too_long}},
    )
    by_query = shop.get("/features/shop/users", user_id=slashed)
    assert (by_query["entity_id"], by_query["values"]["views_1h"]) == (slashed, 1)
    cart = shop.get("/v1/features", cart_id="definitions")
    assert cart["entity_id"] == "definitions"
    assert cart["values"]["user.user_id"] == slashed
    assert shop.get("/features/shop/users/u9")["values"]["views_1h"] == 2  # plain ids: paths
    # a 256-character product id is one everywhere; a 300-character value is no id anywhere
    t = iso(datetime.now(UTC) + timedelta(seconds=1))
    rows = shop.post(
        "/v1/features/historical",
        {"entity_key": "product_id", "rows": [{"entity_id": longest, "timestamp": t}]},
    )["rows"]
    assert rows[0]["viewers_1h"] == 1
    active = shop.post(
        "/v1/features/batch-compute",
        {
            "entity_key": "product_id",
            "select": {
                "type": "active",
                "start": iso(datetime.now(UTC) - timedelta(hours=1)),
                "end": t,
            },
        },
    )
    assert [r["entity_id"] for r in active["results"]] == [longest]
    for path, body in [
        (
            "/v1/features/historical",
            {"entity_key": "product_id", "rows": [{"entity_id": too_long, "timestamp": t}]},
        ),
        (
            "/v1/features/batch-compute",
            {"entity_key": "product_id", "select": {"type": "ids", "ids": [too_long]}},
        ),
        ("/v1/features/compute", {"entity_key": "product_id", "entity_ids": [too_long]}),
        ("/features/shop/users/batch", {"user_ids": [too_long]}),
    ]:
        resp = shop.client.post(path, json=body, headers=shop.service)
        assert resp.status_code == 422, (path, resp.text)
    resp = shop.client.get(
        "/features/shop/users", params={"user_id": too_long}, headers=shop.service
    )
    assert_problem(resp, 422, field="user_id")


def test_sources_and_no_data_are_as_of_now(shop: Shop) -> None:
    now = datetime.now(UTC)
    past, future = now - timedelta(seconds=30), now + timedelta(seconds=200)
    shop.send(
        {"timestamp": iso(future), "user_id": "later", "properties": {}},
        {"timestamp": iso(past), "user_id": "both", "properties": {}},
        {"timestamp": iso(future), "user_id": "both", "properties": {}},
    )
    later = shop.get("/features/shop/users/later", features="views,carts")
    assert later["values"] == {"views_1h": 0, "carts_1h": 0}
    assert later["status"] == {"views_1h": "no_data", "carts_1h": "no_data"}
    assert later["sources"] == {}
    both = shop.get("/features/shop/users/both", features="views")
    assert both["values"] == {"views_1h": 1}
    assert both["status"] == {}
    assert both["sources"] == {"web.view": iso(past)}


def test_a_cart_without_owner_serves_an_unknown_users_values(shop: Shop) -> None:
    shop.send({"timestamp": iso(datetime.now(UTC)), "cart_id": "lonely", "properties": {}})
    body = shop.get("/v1/features/lonely", features="user.views,user.first_seen,user.carts")
    assert body["values"] == {
        "user.views_1h": 0,
        "user.first_seen_1h": None,
        "user.carts_1h": 0,
        "user.user_id": None,
    }
    assert set(body["status"].values()) == {"no_data"}
    assert len(body["status"]) == 3


def test_out_of_range_times_are_refused_not_500(shop: Shop) -> None:
    for as_of in ("0001-01-02T00:00:00Z", "1969-12-31T23:59:59Z", "2262-01-01T00:00:00Z"):
        resp = shop.client.post(
            "/v1/features/batch-compute",
            json={"select": {"type": "ids", "ids": ["u1"]}, "as_of": as_of},
            headers=shop.service,
        )
        assert_problem(resp, 422, field="as_of")
    resp = shop.client.post(
        "/v1/features/batch-compute",
        json={
            "select": {
                "type": "active",
                "start": "0001-01-02T00:00:00Z",
                "end": "2026-01-01T00:00:00Z",
            }
        },
        headers=shop.service,
    )
    assert_problem(resp, 422, field="start")
    schema = shop.client.get("/openapi.json").json()["components"]["schemas"]
    as_of = schema["BatchComputeRequest"]["properties"]["as_of"]["anyOf"][0]
    assert as_of["formatMinimum"] == "1970-01-01T00:00:00Z"


def test_a_global_key_names_its_project(shop: Shop) -> None:
    admin = shop.keys.headers([Role.ADMIN])  # a global key, as `dataintel init` makes
    resp = shop.client.get("/v1/features/definitions", headers=admin)
    problem = assert_problem(resp, 422, field="project_id")
    assert "?project_id=" in problem["detail"]
    ok = shop.client.get("/v1/features/definitions", params={"project_id": "shop"}, headers=admin)
    assert ok.status_code == 200, ok.text
    assert ok.json()["project_id"] == "shop"
