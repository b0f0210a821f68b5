"""Dead letters through HTTP: listing with filters and pagination, replay after a fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dataintel.auth.permissions import Role
from dataintel.storage.metadata.models import DeadLetter
from tests.conftest import apply_yaml, assert_problem
from tests.ingest.conftest import SHOP_V1, Shop

LETTERS = "/api/v1/projects/shop/pipelines/{}/dead-letters"
# v2 declares 'coupon' on the strict pipeline's cart_add
SHOP_V2 = SHOP_V1.replace(
    "events: [{name: cart_add, fields: [{name: sku, type: string}]}]\n  - id: lenient",
    "events: [{name: cart_add, fields: [{name: sku, type: string}, "
    "{name: coupon, type: string}]}]\n  - id: lenient",
)


def dev(shop: Shop) -> dict[str, str]:
    return shop.keys.headers([Role.DEVELOPER], "shop")


def letters(shop: Shop, pipeline: str = "web", **params: Any) -> dict[str, Any]:
    resp = shop.client.get(LETTERS.format(pipeline), params=params, headers=dev(shop))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def replay(shop: Shop, pipeline: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = LETTERS.format(pipeline) + "/replay"
    resp = shop.client.post(url, json=body, headers=dev(shop))
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def reject_mix(shop: Shop) -> None:
    """Five rejects on web: 2 wrong_type, 1 missing_field, 1 unknown_event, 1 not an object."""
    batch = [
        {"event_id": "w1", "event": "cart_add", "properties": {"sku": 1, "price": 1}},
        {"event_id": "m1", "event": "cart_add", "properties": {"sku": "a"}},
        {"event_id": "u1", "event": "checkout"},
        {"event_id": "w2", "event": "page_view", "properties": {"url": 5}},
        7,
    ]
    assert shop.post("/ingest/shop/web/batch", batch).json()["rejected"] == 5


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_list_filter_and_paginate(shop: Shop) -> None:
    reject_mix(shop)
    everything = letters(shop)
    items = everything["items"]
    assert len(items) == 5
    assert everything["next_cursor"] is None
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
    assert items[-1]["event_id"] == "w1"  # newest first
    first = items[-1]
    assert first["payload"] == {
        "event_id": "w1",
        "event": "cart_add",
        "properties": {"sku": 1, "price": 1},
    }
    assert first["reasons"] == [
        {
            "code": "wrong_type",
            "pointer": "/properties/sku",
            "message": "expected string, got number",
        }
    ]
    assert first["pipeline_version"] == 1
    assert first["status"] == "pending"
    assert items[0]["payload"] == 7
    assert items[0]["event"] is None

    def ids(**params: Any) -> set[str]:
        return {i["event_id"] for i in letters(shop, **params)["items"]}

    assert ids(reason="wrong_type") == {"w1", "w2"}
    assert ids(reason="missing_field") == {"m1"}
    assert ids(event="cart_add") == {"w1", "m1"}
    assert ids(event="cart_add", reason="wrong_type") == {"w1"}
    assert ids(status="replayed") == set()
    assert len(ids(status="pending")) == 5
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert ids(since=later) == set()
    assert len(ids(until=later)) == 5

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = letters(shop, **params)
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["id"] for i in items]
    assert letters(shop, "strict")["items"] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_replay_after_a_schema_fix_stores_each_event_once(shop: Shop) -> None:
    batch = [
        {"event_id": "c1", "event": "cart_add", "properties": {"sku": "a", "coupon": "X"}},
        {"event_id": "c2", "event": "cart_add", "properties": {"sku": "b", "coupon": 5}},
        {"event": "cart_add", "properties": {"sku": "c", "coupon": "Y"}},  # no event_id
        {"event_id": "ok", "event": "cart_add", "properties": {"sku": "d"}},
    ]
    first = shop.post("/ingest/shop/strict/batch", batch).json()
    assert (first["accepted"], first["rejected"]) == (1, 3)
    generated = first["items"][2]["event_id"]

    nothing = replay(shop, "strict")  # still v1: every letter is rejected again
    assert (nothing["accepted"], nothing["rejected"]) == (0, 3)
    assert {i["status"] for i in nothing["items"]} == {"rejected"}
    assert {e["event_id"] for e in shop.entries()} == {"ok"}

    apply_yaml(shop.app, SHOP_V2)  # deploys version 2 with the coupon field
    fixed = replay(shop, "strict")
    assert fixed["pipeline_version"] == 2
    assert (fixed["accepted"], fixed["duplicate"], fixed["rejected"]) == (2, 0, 1)
    by_id = {i["event_id"]: i for i in fixed["items"]}
    assert by_id["c1"]["status"] == "accepted"
    assert by_id[generated]["status"] == "accepted"  # the id generated at arrival is kept
    assert by_id["c2"]["status"] == "rejected"
    assert by_id["c2"]["errors"] == [
        {
            "code": "wrong_type",
            "pointer": "/properties/coupon",
            "message": "expected string, got number",
        }
    ]
    assert "log_positions" not in fixed  # the shared log's offsets count every tenant

    again = replay(shop, "strict")
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, 0, 1)
    replayed_ids = [i["id"] for i in fixed["items"] if i["status"] == "accepted"]
    explicit = replay(shop, "strict", {"ids": replayed_ids})
    assert explicit["items"] == []  # replayed letters are never replayed again

    stored = [e for e in shop.entries() if e["pipeline_id"] == "strict"]
    assert sorted(e["event_id"] for e in stored) == sorted(["ok", "c1", generated])
    c1 = next(e for e in stored if e["event_id"] == "c1")
    assert c1["pipeline_version"] == 2
    assert c1["properties"] == {"sku": "a", "coupon": "X"}

    statuses = {i["event_id"]: i["status"] for i in letters(shop, "strict")["items"]}
    assert statuses == {"c1": "replayed", generated: "replayed", "c2": "rejected_again"}
    c2 = letters(shop, "strict", status="rejected_again")["items"][0]
    assert c2["pipeline_version"] == 2
    assert c2["replayed_at"] is None
    assert letters(shop, "strict", status="replayed")["items"][0]["replayed_at"] is not None


def test_replay_of_an_event_stored_meanwhile_is_a_duplicate(shop: Shop) -> None:
    bad = {"event_id": "late", "event": "cart_add", "properties": {"sku": "a"}}
    assert_problem(shop.post("/ingest/shop/web", bad), 422)
    good = {"event_id": "late", "event": "cart_add", "properties": {"sku": "a", "price": 1}}
    assert shop.post("/ingest/shop/web", good).status_code == 202
    with shop.app.state.dataintel.sessions.begin() as session:  # pretend the letter was fixed
        row = session.scalars(select(DeadLetter)).one()
        row.payload = good
    body = replay(shop, "web", {"event": "cart_add", "reason": "missing_field"})
    assert [i["status"] for i in body["items"]] == ["duplicate"]
    assert len(shop.stored("late")) == 1
    assert letters(shop)["items"][0]["status"] == "replayed"


def test_replay_filters_and_limit(shop: Shop) -> None:
    reject_mix(shop)
    only = replay(shop, "web", {"reason": "unknown_event"})
    assert [i["event_id"] for i in only["items"]] == ["u1"]
    limited = replay(shop, "web", {"limit": 2})
    assert len(limited["items"]) == 2
    assert limited["has_more"] is True
    assert_problem(
        shop.client.post(LETTERS.format("web") + "/replay", json={"bogus": 1}, headers=dev(shop)),
        422,
        field="bogus",
    )
    for wrong in (False, True, "2", 2.5):  # a number of letters, never a bool or a string
        assert_problem(
            shop.client.post(
                LETTERS.format("web") + "/replay", json={"limit": wrong}, headers=dev(shop)
            ),
            422,
            field="limit",
        )


def test_dead_letter_permissions_and_unknown_pipelines(shop: Shop) -> None:
    url = LETTERS.format("web")
    ingest = shop.ingest
    assert_problem(shop.client.get(url, headers=ingest), 403)
    analyst = shop.keys.headers([Role.ANALYST], "shop")
    assert shop.client.get(url, headers=analyst).status_code == 200
    assert_problem(shop.client.post(f"{url}/replay", headers=analyst), 403)
    assert_problem(shop.client.get(LETTERS.format("nope"), headers=dev(shop)), 404)
    assert_problem(shop.client.post(LETTERS.format("nope") + "/replay", headers=dev(shop)), 404)
    assert_problem(shop.client.get(url, params={"cursor": "x"}, headers=dev(shop)), 422)
    assert_problem(shop.client.get(url, params={"reason": "nope"}, headers=dev(shop)), 422)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_awkward_payloads_are_dead_lettered_on_every_store(shop: Shop) -> None:
    deep: Any = "leaf"
    for _ in range(300):
        deep = {"d": deep}
    batch = [
        {"event_id": "nul\x00id", "event": "cart\x00add", "properties": {"k\x00": "v\x00"}},
        {
            "event_id": "deep",
            "event": "cart_add",
            "properties": {"sku": "a", "price": 1, "x": deep},
        },
    ]
    body = shop.post("/ingest/shop/web/batch", batch).json()
    assert [i["status"] for i in body["items"]] == ["rejected", "rejected"]
    assert body["items"][1]["errors"] == [
        {
            "code": "invalid_envelope",
            "pointer": "/1/properties",
            "message": "nested too deeply to store (at most about 250 levels)",
        }
    ]
    items = {i["event_id"]: i for i in letters(shop)["items"]}
    assert items["nul\ufffdid"]["payload"]["properties"] == {"k\ufffd": "v\ufffd"}
    assert items["nul\ufffdid"]["event"] == "cart\ufffdadd"
    assert items["deep"]["payload"] == {"not_stored": "the event is nested too deeply to store"}


def test_an_event_dead_lettered_twice_is_replayed_once(shop: Shop) -> None:
    bad = {"event_id": "twice", "event": "cart_add", "properties": {"sku": "a", "coupon": "c"}}
    shop.post("/ingest/shop/strict/batch", [bad])
    shop.post("/ingest/shop/strict/batch", [bad])
    apply_yaml(shop.app, SHOP_V2)
    body = replay(shop, "strict")
    assert sorted(i["status"] for i in body["items"]) == ["accepted", "duplicate"]
    assert len(shop.stored("twice")) == 1
    assert {i["status"] for i in letters(shop, "strict")["items"]} == {"replayed"}
