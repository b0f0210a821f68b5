"""Ingest routes take JSON only (415 problem+json otherwise); Segment's routes stay lenient
as its SDKs and proxies are (ISSUE-8 §2)."""

from __future__ import annotations

import time

import orjson
import pytest

from dataintel.config.pipelines.webhooks import SIGNATURE_HEADER, sign
from tests.conftest import assert_problem
from tests.ingest.conftest import Shop
from tests.ingest.test_segment import basic, site  # noqa: F401  (fixture)
from tests.ingest.test_webhooks import secret_of

EVENT = {"event": "cart_add", "properties": {"sku": "a", "price": 1}}
ROUTES = ["/ingest/shop/web", "/ingest/shop/web/batch", "/v1/events", "/v1/events/batch"]
NOT_JSON = [
    None,
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "text/xml",
    "text/plain",
    "application/octet-stream",
    "application/jsonx",
    "application/json; charset=latin-1",
]
JSON = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON;charset=UTF-8",
    'application/json; charset="utf-8"',
    "application/vnd.shop.events+json",
]


def _body(path: str) -> bytes:
    return orjson.dumps([EVENT] if path.endswith("batch") else EVENT)


@pytest.fixture
def bound(shop: Shop) -> dict[str, str]:
    """An ingest key bound to pipeline ``web`` (so /v1/events knows where to write)."""
    admin = shop.keys.headers(["admin"])
    body = {"name": "k", "project_id": "shop", "roles": ["ingest"], "pipeline_id": "web"}
    key = shop.client.post("/api/v1/api-keys", json=body, headers=admin).json()["key"]
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("content_type", NOT_JSON)
@pytest.mark.parametrize("path", ROUTES)
def test_what_is_not_json_is_415(
    shop: Shop, bound: dict[str, str], path: str, content_type: str | None
) -> None:
    headers = dict(bound)
    if content_type is not None:
        headers["Content-Type"] = content_type
    resp = shop.client.post(path, content=_body(path), headers=headers)
    body = assert_problem(resp, 415)
    assert "application/json" in body["detail"]
    assert shop.entries() == []  # nothing reached the log


@pytest.mark.parametrize("content_type", JSON)
@pytest.mark.parametrize("path", ROUTES)
def test_json_types_are_accepted(
    shop: Shop, bound: dict[str, str], path: str, content_type: str
) -> None:
    headers = {**bound, "Content-Type": content_type}
    resp = shop.client.post(path, content=_body(path), headers=headers)
    assert resp.status_code in (200, 202), resp.text


def test_signed_webhooks_must_be_json_too(shop: Shop) -> None:
    raw = orjson.dumps(EVENT)
    signature = sign(secret_of(shop), raw, int(time.time()))
    form = {SIGNATURE_HEADER: signature, "Content-Type": "application/x-www-form-urlencoded"}
    assert_problem(shop.client.post("/ingest/shop/web", content=raw, headers=form), 415)
    ok = {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}
    assert shop.client.post("/ingest/shop/web", content=raw, headers=ok).status_code == 202


def test_segment_routes_keep_accepting_what_its_clients_send(
    site: tuple[Shop, str],  # noqa: F811
) -> None:
    shop, key = site
    track = orjson.dumps({"type": "track", "event": "page", "userId": "u1", "messageId": "m1"})
    for content_type in ("application/json", "text/plain", None):
        headers = basic(key)
        if content_type is not None:
            headers["Content-Type"] = content_type
        resp = shop.client.post("/v1/page", content=track, headers=headers)
        assert resp.status_code == 200, (content_type, resp.text)
