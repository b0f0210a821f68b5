"""POST /v1/events[/batch] (target from the API key) and GET /v1/events/stats."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from dataintel.api.state import ANALYTICS
from dataintel.auth.permissions import Role
from dataintel.ingest.resources import INGEST
from dataintel.storage.analytics.registry import open_analytics
from tests.conftest import apply_yaml, assert_problem
from tests.ingest.conftest import Shop

ONE_PIPELINE = """
project: {id: solo, name: Solo}
pipelines:
  - id: app
    name: App
    events: [{name: open, fields: [{name: screen, type: string}]}]
"""


def create_key(shop: Shop, **body: Any) -> Any:
    admin = shop.keys.headers([Role.ADMIN])
    payload = {"name": "ingest", "roles": ["ingest"], **body}
    return shop.client.post("/api/v1/api-keys", json=payload, headers=admin)


def bearer(created: Any) -> dict[str, str]:
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


def test_a_pipeline_bound_key_ingests_into_its_pipeline(shop: Shop) -> None:
    created = create_key(shop, project_id="shop", pipeline_id="strict")
    assert created.json()["pipeline_id"] == "strict"
    key = bearer(created)
    event = {"event_id": "v1", "event": "cart_add", "properties": {"sku": "a"}}
    resp = shop.post("/v1/events", event, key)
    assert resp.status_code == 202, resp.text
    (stored,) = shop.stored("v1")
    assert stored["pipeline_id"] == "strict"
    batch = [{"event_id": "v2", "event": "cart_add"}, {"event": "cart_add", "properties": {"x": 1}}]
    body = shop.post("/v1/events/batch", batch, key).json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["items"][1]["errors"][0]["pointer"] == "/1/properties/x"
    rejected = shop.post("/v1/events", {"event": "cart_add", "properties": {"x": 1}}, key)
    assert_problem(rejected, 422, field="/properties/x")


def test_key_pipeline_must_exist_in_the_keys_project(shop: Shop) -> None:
    assert_problem(
        create_key(shop, project_id="shop", pipeline_id="nope"), 422, field="pipeline_id"
    )
    assert_problem(create_key(shop, pipeline_id="web"), 422, field="pipeline_id")
    shop.keys.project("other")
    assert_problem(
        create_key(shop, project_id="other", pipeline_id="web"), 422, field="pipeline_id"
    )


def test_an_unbound_key_needs_exactly_one_deployed_pipeline(shop: Shop) -> None:
    event = {"event": "cart_add", "properties": {"sku": "a", "price": 1}}
    assert_problem(shop.post("/v1/events", event), 422, field="pipeline_id")
    assert_problem(shop.post("/v1/events/batch", [event]), 422, field="pipeline_id")
    shop.keys.project("solo")
    apply_yaml(shop.app, ONE_PIPELINE)
    solo = shop.keys.headers([Role.INGEST], "solo")
    resp = shop.post("/v1/events", {"event_id": "s1", "event": "open"}, solo)
    assert resp.status_code == 202, resp.text
    assert shop.stored("s1")[0]["pipeline_id"] == "app"


def test_v1_events_credentials(shop: Shop) -> None:
    event = {"event": "cart_add"}
    assert_problem(shop.client.post("/v1/events", json=event), 401)
    admin = shop.keys.headers([Role.ADMIN])
    assert_problem(shop.post("/v1/events", event, admin), 422, field="project_id")
    analyst = shop.keys.headers([Role.ANALYST], "shop")
    assert_problem(shop.post("/v1/events", event, analyst), 403)
    shop.keys.project("empty")
    empty = shop.keys.headers([Role.INGEST], "empty")
    assert_problem(shop.post("/v1/events", event, empty), 404)
    dev = shop.keys.headers([Role.DEVELOPER], "shop")
    shop.client.post("/api/v1/projects/shop/pipelines/strict/deactivate", headers=dev)
    bound = bearer(create_key(shop, project_id="shop", pipeline_id="strict"))
    assert_problem(shop.post("/v1/events", event, bound), 409)


def test_stats_count_per_event_and_hour_with_dead_letters(shop: Shop) -> None:
    web = "/ingest/shop/web/batch"
    batch = [
        {"event_id": "a1", "event": "cart_add", "properties": {"sku": "a", "price": 1}},
        {"event_id": "a2", "event": "cart_add", "properties": {"sku": "a", "price": 1}},
        {"event_id": "p1", "event": "page_view", "properties": {"url": "/"}},
        {"event_id": "r1", "event": "cart_add", "properties": {"sku": 1, "price": 1}},
        {"event_id": "r2", "event": "mystery"},
    ]
    shop.post(web, batch)
    shop.post(web, batch[:2])  # two duplicates
    shop.post("/ingest/shop/strict", {"event": "cart_add", "properties": {"sku": "s"}})
    shop.flush_stats()
    resp = shop.client.get("/v1/events/stats", headers=shop.ingest)
    assert resp.status_code == 200, resp.text
    stats = resp.json()
    assert stats["project_id"] == "shop"
    assert stats["totals"] == {"accepted": 4, "duplicate": 2, "rejected": 2, "suppressed": 0}
    by_event = {
        e["event"]: (e["accepted"], e["duplicate"], e["rejected"]) for e in stats["by_event"]
    }
    assert by_event == {"cart_add": (3, 2, 1), "page_view": (1, 0, 0), "(unknown)": (0, 0, 1)}
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    (row,) = stats["by_hour"]
    assert datetime.fromisoformat(row["hour"]) == hour
    assert (row["accepted"], row["duplicate"], row["rejected"]) == (4, 2, 2)
    assert stats["dead_letters"] == {"pending": 2, "replayed": 0, "rejected_again": 0}
    # The log is shared by every tenant: its backlog is for global credentials only.
    assert stats["processing_lag"] is None
    admin = shop.keys.headers([Role.ADMIN])
    ops = shop.client.get("/v1/events/stats", params={"project_id": "shop"}, headers=admin)
    # The embedded processor runs in the app: lag is reported per partition.
    assert set(ops.json()["processing_lag"]) == {"total", "partitions"}
    assert ops.json()["processing_lag"]["total"] >= 0

    web_only = shop.client.get(
        "/v1/events/stats", params={"pipeline_id": "strict"}, headers=shop.ingest
    ).json()
    assert web_only["totals"] == {"accepted": 1, "duplicate": 0, "rejected": 0, "suppressed": 0}
    assert web_only["dead_letters"]["pending"] == 0


def test_stats_project_selection_and_permission(shop: Shop) -> None:
    admin = shop.keys.headers([Role.ADMIN])
    assert_problem(shop.client.get("/v1/events/stats", headers=admin), 422, field="project_id")
    ok = shop.client.get("/v1/events/stats", params={"project_id": "shop"}, headers=admin)
    assert ok.status_code == 200, ok.text
    missing = shop.client.get("/v1/events/stats", params={"project_id": "nope"}, headers=admin)
    assert_problem(missing, 404)
    shop.keys.project("other")
    other = shop.client.get("/v1/events/stats", params={"project_id": "other"}, headers=shop.ingest)
    assert_problem(other, 404)
    analyst = shop.keys.headers([Role.ANALYST], "shop")
    assert_problem(shop.client.get("/v1/events/stats", headers=analyst), 403)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_the_stats_thread_flushes_every_interval(shop: Shop) -> None:
    runtime = shop.app.state.dataintel.port(INGEST)
    runtime.stats._interval = 0.05
    runtime.start()
    shop.post("/ingest/shop/web", {"event": "page_view"})
    deadline = time.monotonic() + 5
    totals: dict[str, int] = {}
    while time.monotonic() < deadline:
        totals = shop.client.get("/v1/events/stats", headers=shop.ingest).json()["totals"]
        if totals["accepted"]:
            break
        time.sleep(0.05)
    assert totals == {"accepted": 1, "duplicate": 0, "rejected": 0, "suppressed": 0}
    shop.post("/ingest/shop/web", {"event": "page_view"})
    runtime.stop()  # flushes what is left
    totals = shop.client.get("/v1/events/stats", headers=shop.ingest).json()["totals"]
    assert totals["accepted"] == 2


def test_processing_lag_is_log_end_minus_analytics_position(shop: Shop) -> None:
    analytics = open_analytics("duckdb://:memory:")
    state = shop.app.state.dataintel
    state.provide(ANALYTICS, analytics)
    admin, params = shop.keys.headers([Role.ADMIN]), {"project_id": "shop"}
    try:
        batch = [{"event": "page_view", "user_id": f"u{i}"} for i in range(5)]
        assert shop.post("/ingest/shop/web/batch", batch).json()["accepted"] == 5
        lag = shop.client.get("/v1/events/stats", params=params, headers=admin).json()[
            "processing_lag"
        ]
        assert lag["total"] == 5
        assert sum(lag["partitions"].values()) == 5
        log, portal = shop.eventlog, shop.client.portal
        assert portal is not None
        for partition in range(log.partitions):
            analytics.apply(portal.call(log.read, partition, 0, 100))
        lag = shop.client.get("/v1/events/stats", params=params, headers=admin).json()[
            "processing_lag"
        ]
        assert lag["total"] == 0
    finally:
        state.withdraw(ANALYTICS)
        analytics.close()
