"""The Segment-compatible API: through TestClient, and with the real segment-analytics-python
client against a live uvicorn server."""

from __future__ import annotations

import asyncio
import base64
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import uvicorn
from segment.analytics.client import Client

from dataintel.api.state import EVENTLOG
from dataintel.auth.permissions import Role
from dataintel.settings import Settings
from dataintel.storage.eventlog.registry import open_eventlog
from tests.conftest import apply_yaml, assert_problem
from tests.ingest.conftest import Shop

SITE = """
project: {id: site, name: Site}
pipelines:
  - id: web
    name: Web
    events:
      - name: Order_Completed
        fields: [{name: revenue, type: number, required: true}]
      - name: identify
        fields: [{name: email, type: string}]
      - name: page
        fields: [{name: name, type: string}, {name: path, type: string}]
"""


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def site(shop: Shop) -> tuple[Shop, str]:
    shop.keys.project("site")
    apply_yaml(shop.app, SITE)
    return shop, shop.keys.mint([Role.INGEST], "site")


def test_track_identify_page_and_batch_map_onto_the_envelope(site: tuple[Shop, str]) -> None:
    shop, key = site
    now = datetime.now(UTC).replace(microsecond=0)
    track = {
        "messageId": "m-track",
        "anonymousId": "anon-1",
        "event": "Order Completed",
        "properties": {"revenue": 12.5},
        "timestamp": now.isoformat(),
        "context": {"cart_id": "c9", "sessionId": "s9"},
    }
    resp = shop.post("/v1/track", track, basic(key))
    assert resp.status_code == 200, resp.text
    assert resp.json()["success"] is True
    assert resp.json()["accepted"] == 1
    (stored,) = shop.stored("m-track")
    assert stored["event"] == "Order_Completed"
    assert (stored["user_id"], stored["cart_id"], stored["session_id"]) == ("anon-1", "c9", "s9")
    assert stored["ts"] == int(now.timestamp()) * 1_000_000
    assert stored["properties"] == {"revenue": 12.5}

    identify = {"messageId": "m-id", "userId": "u1", "anonymousId": "a", "traits": {"email": "x@y"}}
    assert shop.post("/v1/identify", identify, basic(key)).json()["accepted"] == 1
    assert shop.stored("m-id")[0]["properties"] == {"email": "x@y"}
    assert shop.stored("m-id")[0]["user_id"] == "u1"

    page = {"messageId": "m-page", "userId": "u1", "name": "Home", "properties": {"path": "/"}}
    assert shop.post("/v1/page", page, basic(key)).json()["accepted"] == 1
    assert shop.stored("m-page")[0]["properties"] == {"path": "/", "name": "Home"}

    sent = (now - timedelta(minutes=1)).isoformat()
    batch = {
        "batch": [
            {
                "type": "track",
                "messageId": "b1",
                "userId": "u2",
                "event": "Order Completed",
                "properties": {"revenue": 1},
            },
            {
                "type": "track",
                "messageId": "b2",
                "userId": "u2",
                "event": "Order Completed",
                "properties": {"revenue": "free"},
            },
            {"type": "alias", "messageId": "b3", "userId": "u2", "previousId": "a"},
        ],
        "sentAt": sent,
        "writeKey": key,
    }
    body = shop.post("/v1/batch", batch, basic(key)).json()
    assert body["success"] is True
    assert [i["status"] for i in body["items"]] == ["accepted", "rejected", "rejected"]
    assert body["items"][1]["errors"][0]["pointer"] == "/batch/1/properties/revenue"
    assert body["items"][2]["errors"][0]["code"] == "unknown_event"
    assert shop.stored("b1")[0]["ts"] == int((now - timedelta(minutes=1)).timestamp()) * 10**6
    again = shop.post("/v1/batch", batch, basic(key)).json()
    assert again["duplicate"] == 1
    assert len(shop.stored("b1")) == 1


def test_gzip_bodies_are_accepted(site: tuple[Shop, str]) -> None:
    shop, key = site
    raw = orjson.dumps({"batch": [{"type": "identify", "messageId": "gz", "userId": "u"}]})
    headers = {**basic(key), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    resp = shop.client.post("/v1/batch", content=gzip.compress(raw), headers=headers)
    assert resp.status_code == 200, resp.text
    assert len(shop.stored("gz")) == 1
    assert_problem(shop.client.post("/v1/batch", content=b"not gzip", headers=headers), 400)


def test_segment_credentials(site: tuple[Shop, str]) -> None:
    shop, key = site
    msg = {"messageId": "x", "userId": "u", "traits": {}}
    assert_problem(shop.client.post("/v1/identify", json=msg), 401)
    assert_problem(shop.post("/v1/identify", msg, basic("di_nope_x")), 401)
    assert_problem(shop.post("/v1/identify", msg, basic("")), 401)
    assert_problem(shop.post("/v1/identify", msg, {"Authorization": "Basic %%%"}), 401)
    analyst = shop.keys.mint([Role.ANALYST], "site")
    assert_problem(shop.post("/v1/identify", msg, basic(analyst)), 403)
    assert_problem(shop.post("/v1/batch", {"batch": 1}, basic(key)), 400)
    assert shop.post("/v1/identify", msg, {"Authorization": f"Bearer {key}"}).status_code == 200


# --- the real Segment client against a live server ------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(site: tuple[Shop, str], settings: Settings) -> Iterator[tuple[Shop, str, str]]:
    """The same app served by uvicorn on loopback (its own event loop and event log)."""
    shop, key = site
    state = shop.app.state.dataintel
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(shop.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )

    async def serve() -> None:
        log = open_eventlog(settings.resolved_eventlog_url, settings)
        await log.start()
        previous = state.port(EVENTLOG)
        state.provide(EVENTLOG, log)
        try:
            await server.serve()
        finally:
            state.provide(EVENTLOG, previous)
            await log.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield shop, key, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_segment_python_client_delivers_to_the_log(live: tuple[Shop, str, str]) -> None:
    shop, key, url = live
    errors: list[Any] = []
    sync = Client(key, host=url, sync_mode=True, on_error=lambda e, b: errors.append(e))
    sync.track("u1", "Order Completed", {"revenue": 30}, message_id="seg-1")
    sync.identify("u1", {"email": "u1@example.com"}, message_id="seg-2")
    sync.page("u1", name="Home", properties={"path": "/"}, message_id="seg-3")
    queued = Client(key, host=url, on_error=lambda e, b: errors.append(e), upload_size=10)
    for i in range(25):
        queued.track(f"u{i}", "Order Completed", {"revenue": i}, anonymous_id=None)
    queued.flush()
    queued.join()
    assert errors == []
    stored = [e for e in shop.entries() if e["project_id"] == "site"]
    ids = {e["event_id"] for e in stored}
    assert {"seg-1", "seg-2", "seg-3"} <= ids
    assert len(stored) == 28
    by_id = {e["event_id"]: e for e in stored}
    assert by_id["seg-1"]["event"] == "Order_Completed"
    assert by_id["seg-1"]["properties"] == {"revenue": 30}
    assert by_id["seg-2"]["event"] == "identify"
    assert by_id["seg-3"]["properties"] == {"path": "/", "name": "Home"}
    assert sum(1 for e in stored if e["event"] == "Order_Completed") == 26
