"""Signed webhook ingestion: X-Dataintel-Signature instead of an API key."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import orjson
import pytest

from dataintel.auth.permissions import Role
from dataintel.config.pipelines.webhooks import SIGNATURE_HEADER, sign
from dataintel.storage.metadata.models import Pipeline
from dataintel.storage.metadata.types import utcnow
from tests.conftest import assert_problem
from tests.ingest.conftest import Shop

WEB = "/ingest/shop/web"
PIPELINE = "/api/v1/projects/shop/pipelines/web"


def secret_of(shop: Shop) -> str:
    dev = shop.keys.headers([Role.DEVELOPER], "shop")
    secret: str = shop.client.get(f"{PIPELINE}/webhook", headers=dev).json()["secret"]
    return secret


def send(shop: Shop, body: Any, header: str | None, path: str = WEB) -> Any:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[SIGNATURE_HEADER] = header
    return shop.client.post(path, content=raw, headers=headers)


def event(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "event": "cart_add", "properties": {"sku": "a", "price": 1}}


def test_a_signed_event_is_accepted_without_an_api_key(shop: Shop) -> None:
    raw = orjson.dumps(event("wh-1"))
    resp = send(shop, raw, sign(secret_of(shop), raw, int(time.time())))
    assert resp.status_code == 202, resp.text
    assert len(shop.stored("wh-1")) == 1
    batch = orjson.dumps([event("wh-2"), event("wh-3")])
    resp = send(shop, batch, sign(secret_of(shop), batch, int(time.time())), f"{WEB}/batch")
    assert resp.json()["accepted"] == 2, resp.text


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda s, raw, t: sign("whsec_wrong", raw, t), id="wrong-secret"),
        pytest.param(lambda s, raw, t: sign(s, raw + b" ", t), id="other-body"),
        pytest.param(lambda s, raw, t: sign(s, raw, t - 301), id="stale"),
        pytest.param(lambda s, raw, t: sign(s, raw, t + 400), id="future"),
        pytest.param(lambda s, raw, t: f"t={t}", id="no-v1"),
        pytest.param(lambda s, raw, t: "garbage", id="garbage"),
        pytest.param(lambda s, raw, t: "", id="empty"),
    ],
)
def test_bad_signatures_are_401_problems(shop: Shop, mutate: Any) -> None:
    raw = orjson.dumps(event("bad"))
    resp = send(shop, raw, mutate(secret_of(shop), raw, int(time.time())))
    assert_problem(resp, 401)
    assert shop.entries() == []


def test_a_replayed_signature_is_401(shop: Shop) -> None:
    raw = orjson.dumps(event("once"))
    header = sign(secret_of(shop), raw, int(time.time()))
    assert send(shop, raw, header).status_code == 202
    body = assert_problem(send(shop, raw, header), 401)
    assert "replay" in body["detail"]
    assert len(shop.stored("once")) == 1


def test_the_rotated_out_secret_verifies_during_the_grace_period_only(shop: Shop) -> None:
    old = secret_of(shop)
    dev = shop.keys.headers([Role.DEVELOPER], "shop")
    new = shop.client.post(f"{PIPELINE}/webhook/rotate", headers=dev).json()["secret"]
    assert new != old
    for secret, event_id in ((old, "old"), (new, "new")):
        raw = orjson.dumps(event(event_id))
        resp = send(shop, raw, sign(secret, raw, int(time.time())))
        assert resp.status_code == 202, resp.text
    with shop.app.state.dataintel.sessions.begin() as session:
        row = session.get(Pipeline, ("shop", "web"))
        row.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
    raw = orjson.dumps(event("expired"))
    assert_problem(send(shop, raw, sign(old, raw, int(time.time()))), 401)


def test_signatures_of_unknown_pipelines_or_projects_are_401(shop: Shop) -> None:
    raw = orjson.dumps(event("x"))
    header = sign(secret_of(shop), raw, int(time.time()))
    assert_problem(send(shop, raw, header, "/ingest/shop/nope"), 401)
    assert_problem(send(shop, raw, header, "/ingest/nope/web"), 401)


def test_a_signature_of_another_pipeline_does_not_verify(shop: Shop) -> None:
    raw = orjson.dumps(event("cross"))
    header = sign(secret_of(shop), raw, int(time.time()))
    assert_problem(send(shop, raw, header, "/ingest/shop/strict"), 401)


def test_a_signed_call_still_needs_the_pipeline_deployed_and_active(shop: Shop) -> None:
    dev = shop.keys.headers([Role.DEVELOPER], "shop")
    assert shop.client.post(f"{PIPELINE}/deactivate", headers=dev).status_code == 200
    raw = orjson.dumps(event("off"))
    assert_problem(send(shop, raw, sign(secret_of(shop), raw, int(time.time()))), 409)
