"""GDPR end to end on the embedded stores, on real REES46 users: each request type, the
status per store, suppression at ingest, features recomputed without the user, the
``gdpr.forget`` message, the subject export, and the raw bytes of every file afterwards."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.features.serving.service import SERVER
from dataintel.settings import Settings
from dataintel.storage.metadata.report_models import Report
from tests.gdpr.conftest import Receiver, Shop, busiest_users, files_containing

STORES = ["suppression", "event_log", "analytics", "online", "dead_letters", "reports"]


@pytest.fixture
def settings(make_settings: Any, receiver: Receiver) -> Settings:
    port = receiver.server_address[1]
    return make_settings(
        gdpr_forget_webhook_url=f"http://127.0.0.1:{port}/gdpr",
        gdpr_suppression_refresh_seconds=0.2,
        report_poll_seconds=0.05,
    )


def product_views(client: TestClient, app: Any, ids: list[str]) -> dict[str, Any]:
    server = app.state.dataintel.port(SERVER)
    _, vectors = client.portal.call(server.entities, "shop", "product_id", ids, None)  # type: ignore[union-attr]
    return {v["entity_id"]: v["values"]["product_views_lifetime"] for v in vectors}


def test_suppress_with_delete_erases_the_user_everywhere(
    shop: Shop, app: Any, receiver: Receiver
) -> None:
    events = shop.events
    user = busiest_users(events, 1)[0]
    mine = [e for e in events if e["user_id"] == user]
    sessions = {e["session_id"] for e in mine}
    carts = {e["cart_id"] for e in mine if "cart_id" in e}
    products = sorted({e["properties"]["product_id"] for e in mine if e["event"] == "view"})
    # A dead letter of the user, and a row-level report that lists the user's events.
    bad = {**mine[0], "event_id": "bad-1", "properties": {"price": "not a number"}}
    assert shop.send([bad])["rejected"] == 1
    report = shop.client.post(
        "/v1/reports/generate",
        json={"kind": "events", "params": {}, "format": "csv"},
        headers=shop.keys.headers(["analyst"], "shop"),
    )
    assert report.status_code == 202, report.text

    before = shop.export(user)
    assert len(before["events"]) == len(mine)
    assert set(before["sessions"]) == sessions
    assert set(before["carts"]) == carts
    assert before["features"], "the user's features are in the export"
    assert len(before["dead_letters"]) == 1
    assert not before["suppressed"]

    created = shop.forget(user)
    assert created["type"] == "SUPPRESS_WITH_DELETE"
    assert [s["store"] for s in created["stores"]] == STORES
    assert created["stores"][0]["status"] == "finished"  # suppression takes effect at once
    # Suppressed at ingest from now on: acknowledged, counted, never stored.
    late = {**mine[-1], "event_id": "after-forget"}
    sent = shop.send([late])
    assert sent["suppressed"] == 1
    assert sent["items"][0]["status"] == "suppressed"

    done = shop.wait(created["request_id"], until="delivered")
    assert done["status"] == "finished", done
    by_store = {s["store"]: s for s in done["stores"]}
    assert all(s["status"] == "finished" for s in by_store.values()), by_store
    assert by_store["event_log"]["erased"] == len(mine)
    assert by_store["analytics"]["erased"] == len(mine)
    assert by_store["online"]["erased"] >= 1 + len(carts)
    assert by_store["dead_letters"]["erased"] == 1
    assert by_store["reports"]["erased"] == 1

    # The platform heard of it once, with the id it needs and an idempotency key.
    [(headers, body)] = [m for m in receiver.messages if created["request_id"].encode() in m[1]]
    assert headers["Idempotency-Key"] == created["request_id"]
    assert user.encode() in body
    assert b'"gdpr.forget"' in body

    # Features of other entities are recomputed from what remains (brute force).
    others = Counter(
        e["properties"]["product_id"]
        for e in events
        if e["event"] == "view" and e["user_id"] != user
    )
    assert product_views(shop.client, app, products) == {p: others[p] for p in products}

    after = shop.export(user)
    assert after["events"] == []
    assert after["features"] == []
    assert after["dead_letters"] == []
    assert after["suppressed"]
    stats = shop.client.get("/v1/events/stats", headers=shop.keys.headers(["admin"], "shop"))
    assert stats.json()["totals"]["suppressed"] == 1

    # The runner's outcome in the metrics (alerting reads them).
    metrics = shop.client.get("/metrics").text
    assert 'dataintel_gdpr_requests_total{outcome="finished"} 1.0' in metrics
    for store in STORES[1:]:
        assert f'dataintel_gdpr_store_seconds_count{{store="{store}"}} 1.0' in metrics

    # Gone from the bytes of every file the service owns.
    leaks = files_containing(shop.data_dir, {user, *sessions, *carts})
    assert leaks == {}, leaks


def test_delete_only_erases_and_keeps_collecting(shop: Shop) -> None:
    user = busiest_users(shop.events, 2)[1]
    mine = [e for e in shop.events if e["user_id"] == user]
    created = shop.forget(user, "DELETE_ONLY")
    assert [s["store"] for s in created["stores"]] == STORES[1:]
    done = shop.wait(created["request_id"])
    assert done["status"] == "finished", done
    assert {s["store"]: s["erased"] for s in done["stores"]}["analytics"] == len(mine)
    assert shop.export(user)["events"] == []
    again = shop.send([{**mine[0], "event_id": "new-after-delete"}])
    assert again["accepted"] == 1
    assert len(shop.export(user)["events"]) == 1


def test_suppress_only_then_unsuppress(shop: Shop) -> None:
    user = busiest_users(shop.events, 3)[2]
    mine = [e for e in shop.events if e["user_id"] == user]
    created = shop.forget(user, "SUPPRESS_ONLY")
    assert created["status"] == "finished"
    assert [s["store"] for s in created["stores"]] == ["suppression"]
    assert created["propagation"] == "not_applicable"
    assert shop.send([{**mine[0], "event_id": "s1"}])["suppressed"] == 1
    assert len(shop.export(user)["events"]) == len(mine)  # nothing erased
    lifted = shop.forget(user, "UNSUPPRESS")
    assert lifted["status"] == "finished"
    assert shop.send([{**mine[0], "event_id": "s2"}])["accepted"] == 1
    listed = shop.client.get(f"/v1/gdpr/requests?user_id={user}", headers=shop.officer).json()
    assert [r["type"] for r in listed["requests"]] == ["UNSUPPRESS", "SUPPRESS_ONLY"]


def test_requests_are_audited_by_id_and_the_chain_verifies(shop: Shop) -> None:
    user = busiest_users(shop.events, 1)[0]
    created = shop.forget(user, "DELETE_ONLY")
    shop.wait(created["request_id"], until="delivered")
    trail = shop.client.get("/v1/audit?limit=1000", headers=shop.officer).json()["entries"]
    actions = [e["action"] for e in trail if e["target"] == created["request_id"]]
    assert actions == ["gdpr_request", "gdpr_request_finished", "gdpr_forget_propagated"]
    assert user not in str(trail)
    verify = shop.client.get("/v1/audit/verify", headers=shop.officer).json()
    assert verify["valid"] is True


def test_bad_requests_are_problems(shop: Shop, client: TestClient) -> None:
    resp = client.post("/v1/gdpr/forget/u1", json={"type": "ERASE_ALL"}, headers=shop.officer)
    assert resp.status_code == 422
    assert "type" in resp.text
    resp = client.get("/v1/gdpr/status/gdpr_" + "0" * 32, headers=shop.officer)
    assert resp.status_code == 404
    resp = client.get("/v1/gdpr/status/nope", headers=shop.officer)
    assert resp.status_code == 422
    analyst = shop.keys.headers(["analyst"], "shop")
    assert client.post("/v1/gdpr/forget/u1", headers=analyst).status_code == 403


def test_a_failed_store_is_retried_with_back_off_until_it_succeeds(shop: Shop, app: Any) -> None:
    """A real failure: a report's file turned into a directory, which unlink refuses; the
    store fails (attempt 1, its reason shown, the request still running and due again in
    2 s), and once the directory is gone the retry finishes the request."""
    analyst = shop.keys.headers(["analyst"], "shop")
    created = shop.client.post(
        "/v1/reports/generate",
        json={"kind": "events", "params": {}, "format": "csv"},
        headers=analyst,
    )
    report_id = created.json()["id"]
    deadline = time.monotonic() + 15
    while shop.client.get(f"/v1/reports/{report_id}", headers=analyst).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with app.state.dataintel.sessions() as session:
        path = Path(session.get(Report, report_id).file_path)
    path.unlink()
    path.mkdir()
    user = busiest_users(shop.events, 1)[0]
    request_id = shop.forget(user, "DELETE_ONLY")["request_id"]
    deadline = time.monotonic() + 30
    while True:
        body = shop.status(request_id)
        reports = {s["store"]: s for s in body["stores"]}["reports"]
        if reports["status"] == "failed":
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    assert body["status"] == "running"
    assert reports["attempts"] == 1
    assert reports["error"].startswith("IsADirectoryError")
    assert body["next_attempt_at"] is not None
    finished_before = {s["store"] for s in body["stores"] if s["status"] == "finished"}
    assert {"event_log", "analytics", "online", "dead_letters"} <= finished_before
    path.rmdir()
    done = shop.wait(request_id)
    assert done["status"] == "finished", done
    reports = {s["store"]: s for s in done["stores"]}["reports"]
    assert reports["attempts"] == 1  # failed attempts
    assert reports["error"] is None
    assert reports["erased"] == 1
