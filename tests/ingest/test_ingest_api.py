"""POST /ingest/{project_id}/{pipeline_id}[/batch] through HTTP, against a real event log."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.api.state import EVENTLOG
from dataintel.auth.permissions import Role
from dataintel.settings import Settings
from tests.conftest import assert_problem
from tests.ingest.conftest import Shop

WEB = "/ingest/shop/web"
BATCH = "/ingest/shop/web/batch"
MAX_BATCH = 20


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(ingest_max_batch_events=MAX_BATCH, max_body_bytes=64 * 1024)


def cart_add(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event": "cart_add",
        "user_id": "u1",
        "properties": {"sku": "sku-1", "price": 9.5},
    }
    event.update(overrides)
    return event


def errors_of(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["code"], e["pointer"]) for e in body["errors"]}


# --- happy paths ---------------------------------------------------------------------------


def test_single_event_is_accepted_durable_and_normalised(shop: Shop) -> None:
    event = cart_add(
        event_id="evt-1",
        user_id=42,
        cart_id="c1",
        session_id=" s1 ",
        properties={"sku": "a", "price": 3, "quantity": 2.5, "gift": True, "meta": {"x": [1]}},
    )
    resp = shop.post(WEB, event)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "accepted"
    assert body["event_id"] == "evt-1"
    assert set(body) == {"status", "event_id"}  # no offsets of the shared log
    (stored,) = shop.stored("evt-1")
    assert stored["project_id"] == "shop"
    assert stored["pipeline_id"] == "web"
    assert stored["pipeline_version"] == 1
    assert stored["user_id"] == "42"  # numbers are stringified
    assert stored["cart_id"] == "c1"
    assert stored["session_id"] == " s1 "
    assert stored["properties"] == event["properties"]
    assert stored["ts"] == stored["received_at"]  # no timestamp: the time of arrival
    assert abs(stored["received_at"] - time.time_ns() // 1000) < 60_000_000


def test_event_id_is_generated_when_absent(shop: Shop) -> None:
    resp = shop.post(WEB, cart_add())
    assert resp.status_code == 202, resp.text
    event_id = resp.json()["event_id"]
    assert len(event_id) == 32
    assert len(shop.stored(event_id)) == 1


def test_batch_is_accepted_and_partitioned_by_entity(shop: Shop) -> None:
    events = [cart_add(event_id=f"b{i}", user_id=f"u{i % 3}") for i in range(10)]
    resp = shop.post(BATCH, events)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (10, 0, 0)
    assert [i["index"] for i in body["items"]] == list(range(10))
    assert {i["status"] for i in body["items"]} == {"accepted"}
    assert {e["event_id"] for e in shop.entries()} == {f"b{i}" for i in range(10)}


def test_batch_accepts_an_events_object(shop: Shop) -> None:
    resp = shop.post(BATCH, {"events": [cart_add(), cart_add(properties={"sku": 1})]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert ("missing_field", "/events/1/properties/price") in errors_of(body["items"][1])


# --- malformed bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [WEB, BATCH])
@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2", b"\xff\xfe"])
def test_malformed_json_is_a_400_problem(shop: Shop, path: str, raw: bytes) -> None:
    resp = shop.client.post(
        path, content=raw, headers={**shop.ingest, "Content-Type": "application/json"}
    )
    assert_problem(resp, 400)
    assert shop.entries() == []


@pytest.mark.parametrize("body", [{"event": "cart_add"}, "text", 3, {"events": 1}])
def test_a_batch_must_be_an_array_or_events_object(shop: Shop, body: Any) -> None:
    assert_problem(shop.post(BATCH, body), 400)


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "pointer", "code"),
    [
        ({"sku": 1, "price": 1}, "/properties/sku", "wrong_type"),
        ({"sku": "a", "price": "1"}, "/properties/price", "wrong_type"),
        ({"sku": "a", "price": True}, "/properties/price", "wrong_type"),  # bool is no number
        ({"sku": "a", "price": 1, "gift": "yes"}, "/properties/gift", "wrong_type"),
        ({"sku": "a", "price": 1, "meta": [1]}, "/properties/meta", "wrong_type"),
        ({"sku": "a", "price": 1, "added_at": True}, "/properties/added_at", "wrong_type"),
        (
            {"sku": "a", "price": 1, "added_at": "yesterday"},
            "/properties/added_at",
            "invalid_timestamp",
        ),
        ({"price": 1}, "/properties/sku", "missing_field"),
        ({"sku": "a", "price": None}, "/properties/price", "missing_field"),
    ],
)
def test_rejected_event_is_a_422_naming_the_field_and_is_dead_lettered(
    shop: Shop, props: dict[str, Any], pointer: str, code: str
) -> None:
    resp = shop.post(WEB, cart_add(event_id="bad-1", properties=props))
    body = assert_problem(resp, 422, field=pointer)
    assert (code, pointer) in errors_of(body)
    assert all({"loc", "pointer", "msg", "type", "code"} <= e.keys() for e in body["errors"])
    assert body["event_id"] == "bad-1"
    assert shop.entries() == []
    dev = shop.keys.headers([Role.DEVELOPER], "shop")
    letters = shop.client.get("/api/v1/projects/shop/pipelines/web/dead-letters", headers=dev)
    (letter,) = letters.json()["items"]
    assert letter["event_id"] == "bad-1"
    assert letter["payload"]["properties"] == props


@pytest.mark.parametrize(
    ("event", "pointer", "code"),
    [
        ({"properties": {}}, "/event", "missing_field"),
        ({"event": 5}, "/event", "wrong_type"),
        ({"event": "checkout"}, "/event", "unknown_event"),
        ({"event": "legacy"}, "/event", "event_disabled"),
        (cart_add(properties=[1]), "/properties", "wrong_type"),
        (cart_add(user_id=True), "/user_id", "wrong_type"),
        (cart_add(cart_id=1.5), "/cart_id", "wrong_type"),
        (cart_add(session_id="s" * 300), "/session_id", "invalid_envelope"),
        (cart_add(event_id=""), "/event_id", "invalid_envelope"),
        (cart_add(event_id={"a": 1}), "/event_id", "invalid_envelope"),
        (cart_add(colour="red"), "/colour", "invalid_envelope"),
        (cart_add(timestamp="soon"), "/timestamp", "invalid_timestamp"),
        (cart_add(timestamp=True), "/timestamp", "invalid_timestamp"),
        (cart_add(timestamp=1e300), "/timestamp", "invalid_timestamp"),
    ],
)
def test_envelope_problems_are_typed(
    shop: Shop, event: dict[str, Any], pointer: str, code: str
) -> None:
    body = assert_problem(shop.post(WEB, event), 422, field=pointer)
    assert (code, pointer) in errors_of(body)


def test_a_non_object_event_is_rejected(shop: Shop) -> None:
    body = assert_problem(shop.post(WEB, [1, 2]), 422)
    assert errors_of(body) == {("invalid_envelope", "")}


def test_unknown_properties_follow_the_pipeline_policy(shop: Shop) -> None:
    extra = {"sku": "a", "price": 1, "colour": "red", "a/b": 1}
    allowed = shop.post(WEB, cart_add(event_id="allow", properties=extra))
    assert allowed.status_code == 202, allowed.text
    assert shop.stored("allow")[0]["properties"] == extra

    dropped = shop.post("/ingest/shop/lenient", cart_add(event_id="drop", properties=extra))
    assert dropped.status_code == 202, dropped.text
    assert shop.stored("drop")[0]["properties"] == {"sku": "a"}

    rejected = shop.post("/ingest/shop/strict", cart_add(event_id="reject", properties=extra))
    body = assert_problem(rejected, 422, field="/properties/colour")
    assert errors_of(body) == {
        ("unknown_property", "/properties/price"),
        ("unknown_property", "/properties/colour"),
        ("unknown_property", "/properties/a~1b"),
    }
    assert shop.stored("reject") == []


def test_future_and_too_late_timestamps_are_rejected(shop: Shop) -> None:
    now = datetime.now(UTC)
    future = shop.post(WEB, cart_add(timestamp=(now + timedelta(minutes=10)).isoformat()))
    assert errors_of(assert_problem(future, 422)) == {("future_timestamp", "/timestamp")}
    late = shop.post(WEB, cart_add(timestamp=int((now - timedelta(days=8)).timestamp())))
    assert errors_of(assert_problem(late, 422)) == {("too_late", "/timestamp")}
    skewed = shop.post(WEB, cart_add(timestamp=(now + timedelta(minutes=4)).isoformat()))
    assert skewed.status_code == 202, skewed.text
    old = shop.post(WEB, cart_add(timestamp=(now - timedelta(days=6)).isoformat()))
    assert old.status_code == 202, old.text


def test_timestamps_in_every_form_are_stored_as_utc_microseconds(shop: Shop) -> None:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    seconds = int(base.timestamp())
    want = seconds * 1_000_000
    india = timezone(timedelta(hours=5, minutes=30))
    forms: dict[str, Any] = {
        "iso-offset": base.astimezone(india).isoformat(),
        "iso-negative-offset": base.astimezone(timezone(timedelta(hours=-7))).isoformat(),
        "iso-z": base.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "iso-naive": base.strftime("%Y-%m-%dT%H:%M:%S"),
        "utc-suffix": base.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "epoch-s": seconds,
        "epoch-ms": seconds * 1000,
        "epoch-s-float": seconds + 0.25,
        "epoch-ms-float": seconds * 1000 + 0.5,
        "iso-micro": (base + timedelta(microseconds=123456)).isoformat(),
    }
    events = [cart_add(event_id=name, timestamp=value) for name, value in forms.items()]
    resp = shop.post(BATCH, events)
    assert resp.json()["accepted"] == len(forms), resp.text
    stored = {e["event_id"]: e["ts"] for e in shop.entries()}
    assert stored == {
        **dict.fromkeys(forms, want),
        "epoch-s-float": want + 250_000,
        "epoch-ms-float": want + 500,
        "iso-micro": want + 123456,
    }


# --- partial and duplicate batches -------------------------------------------------------------


def test_partial_batch_accepts_the_valid_items(shop: Shop) -> None:
    events = [
        cart_add(event_id="ok-0"),
        cart_add(event_id="bad-1", properties={"sku": "a", "price": "cheap"}),
        cart_add(event_id="ok-2"),
        {"event": "nope", "event_id": "bad-3"},
        "not an event",
    ]
    body = shop.post(BATCH, events).json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 0, 3)
    assert [i["status"] for i in body["items"]] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
        "rejected",
    ]
    assert errors_of(body["items"][1]) == {("wrong_type", "/1/properties/price")}
    assert errors_of(body["items"][3]) == {("unknown_event", "/3/event")}
    assert errors_of(body["items"][4]) == {("invalid_envelope", "/4")}
    assert sorted(e["event_id"] for e in shop.entries()) == ["ok-0", "ok-2"]


def test_duplicate_batches_are_stored_once(shop: Shop) -> None:
    events = [cart_add(event_id=f"d{i}") for i in range(5)]
    first = shop.post(BATCH, events).json()
    assert first["accepted"] == 5
    second = shop.post(BATCH, events).json()
    assert (second["accepted"], second["duplicate"]) == (0, 5)
    assert {i["status"] for i in second["items"]} == {"duplicate"}
    assert sorted(e["event_id"] for e in shop.entries()) == [f"d{i}" for i in range(5)]


def test_duplicates_within_a_batch_and_single_duplicates(shop: Shop) -> None:
    body = shop.post(BATCH, [cart_add(event_id="x"), cart_add(event_id="x")]).json()
    assert [i["status"] for i in body["items"]] == ["accepted", "duplicate"]
    again = shop.post(WEB, cart_add(event_id="x"))
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert len(shop.stored("x")) == 1


# --- limits ----------------------------------------------------------------------------------


def test_oversized_batch_is_a_413_naming_the_limit(shop: Shop) -> None:
    body = assert_problem(shop.post(BATCH, [cart_add()] * (MAX_BATCH + 1)), 413)
    assert str(MAX_BATCH) in body["detail"]
    assert body["limit_events"] == MAX_BATCH
    assert shop.post(BATCH, [cart_add()] * MAX_BATCH).json()["accepted"] == MAX_BATCH


def test_oversized_body_is_a_413(shop: Shop) -> None:
    huge = cart_add(properties={"sku": "a" * 70_000, "price": 1})
    assert_problem(shop.post(WEB, huge), 413)


def test_an_empty_batch_is_fine(shop: Shop) -> None:
    body = shop.post(BATCH, []).json()
    assert (body["accepted"], body["items"]) == (0, [])


# --- targets and credentials ---------------------------------------------------------------


def test_unknown_or_undeployed_pipelines_are_404(shop: Shop) -> None:
    assert_problem(shop.post("/ingest/shop/nope", cart_add()), 404)
    assert_problem(shop.post("/ingest/shop/nope/batch", [cart_add()]), 404)
    dev = shop.keys.headers([Role.DEVELOPER], "shop")
    created = shop.client.post(
        "/api/v1/projects/shop/pipelines", json={"id": "draft", "name": "Draft"}, headers=dev
    )
    assert created.status_code == 201, created.text
    assert_problem(shop.post("/ingest/shop/draft", cart_add()), 404)


def test_a_project_with_nothing_deployed_is_404(shop: Shop) -> None:
    shop.keys.project("empty")
    key = shop.keys.headers([Role.INGEST], "empty")
    assert_problem(shop.post("/ingest/empty/web", cart_add(), headers=key), 404)


def test_a_deactivated_pipeline_refuses_events_until_activated(shop: Shop) -> None:
    dev = shop.keys.headers([Role.DEVELOPER], "shop")
    base = "/api/v1/projects/shop/pipelines/web"
    assert shop.client.post(f"{base}/deactivate", headers=dev).status_code == 200
    body = assert_problem(shop.post(WEB, cart_add()), 409)
    assert "web" in body["detail"]
    assert_problem(shop.post(BATCH, [cart_add()]), 409)
    assert shop.client.post(f"{base}/activate", headers=dev).status_code == 200
    assert shop.post(WEB, cart_add()).status_code == 202


def test_credentials_and_tenancy(shop: Shop, client: TestClient) -> None:
    assert_problem(client.post(WEB, json=cart_add()), 401)
    assert_problem(shop.post(WEB, cart_add(), {"Authorization": "Bearer di_nope_x"}), 401)
    developer = shop.keys.headers([Role.DEVELOPER], "shop")
    assert_problem(shop.post(WEB, cart_add(), developer), 403)
    shop.keys.project("other")
    other = shop.keys.headers(list(Role), "other")
    assert_problem(shop.post(WEB, cart_add(), other), 404)
    assert_problem(shop.post(BATCH, [cart_add()], other), 404)
    assert shop.entries() == []
    admin = shop.keys.headers([Role.ADMIN])
    assert shop.post(WEB, cart_add(), admin).status_code == 202


def test_ingest_without_a_running_event_log_is_503(shop: Shop) -> None:
    state = shop.app.state.dataintel
    log = state.port(EVENTLOG)
    state.withdraw(EVENTLOG)
    try:
        assert_problem(shop.post(WEB, cart_add()), 503)
    finally:
        state.provide(EVENTLOG, log)
