"""Pipelines, event schemas and webhooks through HTTP, plus the signature scheme helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from dataintel.config.deployments.active import CONFIGS
from dataintel.config.pipelines.webhooks import sign, valid_secrets, verify_signature
from dataintel.settings import Settings
from dataintel.storage.metadata.models import Pipeline
from tests.conftest import Keys, assert_problem

BASE = "/api/v1/projects/p1/pipelines"
GRACE = 600
PUBLIC = "https://di.example.com"

ORDER = {
    "name": "order_completed",
    "description": "An order was paid",
    "fields": [
        {"name": "order_id", "type": "string", "required": True},
        {"name": "amount", "type": "number"},
        {"name": "paid_at", "type": "timestamp"},
    ],
}
WEB = {"id": "web", "name": "Web shop", "events": [ORDER, {"name": "page_view"}]}
SPEND = {
    "name": "spend",
    "pipeline_id": "web",
    "source_event": "order_completed",
    "aggregation": "SUM",
    "field": "amount",
    "windows": ["1h"],
}


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(webhook_rotation_grace_seconds=GRACE, public_url=PUBLIC)


@pytest.fixture
def dev(keys: Keys) -> dict[str, str]:
    keys.project("p1")
    return keys.headers([Role.DEVELOPER], "p1")


@pytest.fixture
def web(client: TestClient, dev: dict[str, str]) -> dict[str, Any]:
    resp = client.post(BASE, json=WEB, headers=dev)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _fields(event: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["type"] for f in event["fields"]}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_pipeline_and_event_lifecycle(client: TestClient, dev: dict[str, str]) -> None:
    created = client.post(BASE, json=WEB, headers=dev)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] == "web"
    assert body["active"] is True
    assert body["ingest_url"] == f"{PUBLIC}/ingest/p1/web"
    assert [e["name"] for e in body["events"]] == ["order_completed", "page_view"]
    assert "secret" not in str(body)

    assert [p["id"] for p in client.get(BASE, headers=dev).json()] == ["web"]
    got = client.get(f"{BASE}/web", headers=dev).json()
    assert _fields(got["events"][0]) == {
        "order_id": "string",
        "amount": "number",
        "paid_at": "timestamp",
    }

    patched = client.patch(
        f"{BASE}/web", json={"name": "Web", "unknown_properties": "reject"}, headers=dev
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Web"
    assert patched.json()["unknown_properties"] == "reject"
    assert patched.json()["description"] == ""

    cart = {"name": "cart_updated", "fields": [{"name": "items", "type": "number"}]}
    assert client.post(f"{BASE}/web/events", json=cart, headers=dev).status_code == 201
    names = [e["name"] for e in client.get(f"{BASE}/web/events", headers=dev).json()]
    assert names == ["cart_updated", "order_completed", "page_view"]
    changed = client.patch(
        f"{BASE}/web/events/cart_updated",
        json={"enabled": False, "fields": [{"name": "total", "type": "number"}]},
        headers=dev,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False
    assert _fields(changed.json()) == {"total": "number"}
    assert client.get(f"{BASE}/web/events/cart_updated", headers=dev).json() == changed.json()
    assert client.delete(f"{BASE}/web/events/cart_updated", headers=dev).status_code == 204
    assert_problem(client.get(f"{BASE}/web/events/cart_updated", headers=dev), 404)

    assert client.delete(f"{BASE}/web", headers=dev).status_code == 204
    assert_problem(client.get(f"{BASE}/web", headers=dev), 404)
    assert client.get(BASE, headers=dev).json() == []


def test_duplicate_pipeline_is_409(client: TestClient, dev: dict[str, str], web: Any) -> None:
    assert_problem(client.post(BASE, json={"id": "web", "name": "again"}, headers=dev), 409)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"id": "Web Shop", "name": "x"}, "/body/id"),
        ({"id": "web", "name": ""}, "/body/name"),
        ({"id": "web", "name": "x", "unknown_properties": "maybe"}, "/body/unknown_properties"),
        ({"id": "web", "name": "x", "color": "red"}, "/body/color"),
        (
            {"id": "web", "name": "x", "events": [{"name": "a"}, {"name": "a"}]},
            "/body/events",
        ),
        (
            {
                "id": "web",
                "name": "x",
                "events": [
                    {
                        "name": "a",
                        "fields": [
                            {"name": "f", "type": "string"},
                            {"name": "f", "type": "number"},
                        ],
                    }
                ],
            },
            "/body/events/0/fields",
        ),
        (
            {"id": "web", "name": "x", "events": [{"name": "a", "fields": [{"name": "f"}]}]},
            "/body/events/0/fields/0/type",
        ),
    ],
)
def test_create_pipeline_422_names_the_field(
    client: TestClient, dev: dict[str, str], payload: dict[str, Any], field: str
) -> None:
    assert_problem(client.post(BASE, json=payload, headers=dev), 422, field=field)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "bad name!"}, "/body/name"),
        ({"name": "e", "fields": [{"name": "f", "type": "decimal"}]}, "/body/fields/0/type"),
        ({"name": "e", "fields": [{"name": "9f", "type": "string"}]}, "/body/fields/0/name"),
        (
            {"name": "e", "fields": [{"name": "f", "type": "string"}] * 2},
            "/body/fields",
        ),
    ],
)
def test_create_event_422_names_the_field(
    client: TestClient, dev: dict[str, str], web: Any, payload: dict[str, Any], field: str
) -> None:
    assert_problem(client.post(f"{BASE}/web/events", json=payload, headers=dev), 422, field=field)


def test_explicit_null_in_updates_is_422(client: TestClient, dev: dict[str, str], web: Any) -> None:
    assert_problem(client.patch(f"{BASE}/web", json={"name": None}, headers=dev), 422, field="name")
    resp = client.patch(f"{BASE}/web/events/page_view", json={"fields": None}, headers=dev)
    assert_problem(resp, 422, field="fields")


def test_duplicate_event_is_409(client: TestClient, dev: dict[str, str], web: Any) -> None:
    resp = client.post(f"{BASE}/web/events", json={"name": "page_view"}, headers=dev)
    assert_problem(resp, 409)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("PATCH", "/nope"),
        ("DELETE", "/nope"),
        ("POST", "/nope/activate"),
        ("POST", "/nope/deactivate"),
        ("GET", "/nope/webhook"),
        ("POST", "/nope/webhook/rotate"),
        ("GET", "/nope/events"),
        ("POST", "/nope/events"),
        ("GET", "/web/events/nope"),
        ("PATCH", "/web/events/nope"),
        ("DELETE", "/web/events/nope"),
        ("GET", "/nope/events/page_view"),
    ],
)
def test_unknown_pipeline_or_event_is_404(
    client: TestClient, dev: dict[str, str], web: Any, method: str, path: str
) -> None:
    body = {"PATCH": {}, "POST": {"name": "x"}}.get(method)
    if path.endswith(("activate", "rotate")):
        body = None
    resp = client.request(method, BASE + path, json=body, headers=dev)
    assert_problem(resp, 404)


def test_event_changes_that_break_a_feature_are_409(
    client: TestClient, dev: dict[str, str], web: Any
) -> None:
    assert client.post("/api/v1/projects/p1/features", json=SPEND, headers=dev).status_code == 201
    path = f"{BASE}/web/events/order_completed"
    fields = ORDER["fields"]
    assert isinstance(fields, list)

    removed = client.patch(path, json={"fields": fields[:1]}, headers=dev)
    body = assert_problem(removed, 409, field="amount")
    assert body["features"] == ["spend"]
    assert "spend" in body["detail"]

    retyped = [fields[0], {"name": "amount", "type": "string"}]
    body = assert_problem(client.patch(path, json={"fields": retyped}, headers=dev), 409)
    assert "spend" in body["detail"]
    assert "string" in body["detail"]

    # Changes the feature does not depend on are fine.
    kept = [*fields[:2], {"name": "coupon", "type": "string"}]
    ok = client.patch(path, json={"fields": kept, "description": "paid"}, headers=dev)
    assert ok.status_code == 200, ok.text
    assert _fields(ok.json()) == {"order_id": "string", "amount": "number", "coupon": "string"}

    body = assert_problem(client.delete(path, headers=dev), 409, field="spend")
    assert body["features"] == ["spend"]
    body = assert_problem(client.delete(f"{BASE}/web", headers=dev), 409, field="spend")
    assert body["features"] == ["spend"]

    assert client.delete("/api/v1/projects/p1/features/spend", headers=dev).status_code == 204
    assert client.delete(path, headers=dev).status_code == 204
    assert client.delete(f"{BASE}/web", headers=dev).status_code == 204


def test_entity_key_field_cannot_be_retyped_away(
    client: TestClient, dev: dict[str, str], web: Any
) -> None:
    feature = {**SPEND, "name": "per_order", "entity_key": "order_id", "aggregation": "COUNT"}
    del feature["field"]
    assert client.post("/api/v1/projects/p1/features", json=feature, headers=dev).status_code == 201
    fields = [{"name": "order_id", "type": "boolean"}, {"name": "amount", "type": "number"}]
    resp = client.patch(f"{BASE}/web/events/order_completed", json={"fields": fields}, headers=dev)
    body = assert_problem(resp, 409, field="entity_key")
    assert body["features"] == ["per_order"]


def test_deactivate_and_activate_take_effect_at_once(
    app: Any, client: TestClient, dev: dict[str, str], web: Any
) -> None:
    cache = app.state.dataintel.port(CONFIGS)
    assert cache.get("p1").pipeline_active["web"] is True  # primed: cached for the TTL

    off = client.post(f"{BASE}/web/deactivate", headers=dev)
    assert off.status_code == 200
    assert off.json()["active"] is False
    assert client.get(f"{BASE}/web", headers=dev).json()["active"] is False
    assert cache.get("p1").pipeline_active["web"] is False

    on = client.post(f"{BASE}/web/activate", headers=dev)
    assert on.status_code == 200
    assert on.json()["active"] is True
    assert cache.get("p1").pipeline_active["web"] is True


def _row(app: Any, pipeline_id: str = "web") -> Pipeline:
    with app.state.dataintel.sessions() as session:
        row: Pipeline | None = session.get(Pipeline, ("p1", pipeline_id))
        assert row is not None
        return row


def test_webhook_rotation_keeps_the_old_secret_for_the_grace_period(
    app: Any, client: TestClient, dev: dict[str, str], web: Any
) -> None:
    info = client.get(f"{BASE}/web/webhook", headers=dev).json()
    assert info["url"] == f"{PUBLIC}/ingest/p1/web"
    assert info["secret"].startswith("whsec_")
    assert len(info["secret"]) > 40
    assert info["previous_secret_valid_until"] is None
    assert info["rotated_at"] is None
    assert info["signature_header"] == "X-Dataintel-Signature"
    old = info["secret"]

    rotated = client.post(f"{BASE}/web/webhook/rotate", headers=dev)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert client.get(f"{BASE}/web/webhook", headers=dev).json()["secret"] == new

    row = _row(app)
    assert row.webhook_rotated_at is not None
    until = datetime.fromisoformat(rotated.json()["previous_secret_valid_until"])
    assert until == row.webhook_rotated_at + timedelta(seconds=GRACE)

    body = b'{"event":"page_view","user_id":"u1"}'
    for offset, old_ok in ((1, True), (GRACE - 1, True), (GRACE, False), (GRACE + 60, False)):
        now = row.webhook_rotated_at + timedelta(seconds=offset)
        secrets = valid_secrets(row, now)
        t = int(now.timestamp())
        assert verify_signature(sign(new, body, t), body, secrets, now)
        assert verify_signature(sign(old, body, t), body, secrets, now) is old_ok, offset


def test_webhook_routes_need_config_write(
    client: TestClient, keys: Keys, dev: dict[str, str], web: Any
) -> None:
    analyst = keys.headers([Role.ANALYST], "p1")
    assert client.get(f"{BASE}/web", headers=analyst).status_code == 200
    assert_problem(client.get(f"{BASE}/web/webhook", headers=analyst), 403)
    assert_problem(client.post(f"{BASE}/web/webhook/rotate", headers=analyst), 403)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "", {"id": "app", "name": "App"}),
        ("PATCH", "/web", {"name": "x"}),
        ("DELETE", "/web", None),
        ("POST", "/web/deactivate", None),
        ("POST", "/web/activate", None),
        ("POST", "/web/events", {"name": "x"}),
        ("PATCH", "/web/events/page_view", {"description": "x"}),
        ("DELETE", "/web/events/page_view", None),
    ],
)
def test_writes_need_config_write(
    client: TestClient,
    keys: Keys,
    web: Any,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    analyst = keys.headers([Role.ANALYST], "p1")
    assert_problem(client.request(method, BASE + path, json=body, headers=analyst), 403)


def test_reads_need_config_read(client: TestClient, keys: Keys, web: Any) -> None:
    ingest = keys.headers([Role.INGEST], "p1")
    for path in ("", "/web", "/web/events", "/web/events/page_view"):
        assert_problem(client.get(BASE + path, headers=ingest), 403)
    service = keys.headers([Role.SERVICE], "p1")
    assert client.get(f"{BASE}/web/events/page_view", headers=service).status_code == 200


def test_other_projects_are_unreachable(
    client: TestClient, keys: Keys, admin: dict[str, str], web: Any
) -> None:
    keys.project("p2")
    other = keys.headers([Role.DEVELOPER], "p2")
    assert_problem(client.get(f"{BASE}/web", headers=other), 404)
    assert_problem(client.post(f"{BASE}/web/deactivate", headers=other), 404)
    p2 = "/api/v1/projects/p2/pipelines"
    assert client.get(p2, headers=other).json() == []
    assert_problem(client.get(f"{p2}/web", headers=admin), 404)
    assert_problem(client.get(f"{p2}/web/events/page_view", headers=admin), 404)
    # The same id in another project is a different pipeline.
    assert client.post(p2, json={"id": "web", "name": "Other"}, headers=other).status_code == 201
    assert client.get(f"{BASE}/web", headers=admin).json()["name"] == "Web shop"


# --- the signature scheme, as the ingestion endpoint will use it --------------------------

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
BODY = b'{"event":"order_completed"}'


@dataclass
class Row:
    webhook_secret: str = "whsec_new"
    previous_webhook_secret: str | None = "whsec_old"
    previous_secret_expires_at: datetime | None = NOW + timedelta(seconds=10)


def test_valid_secrets() -> None:
    assert valid_secrets(Row(), NOW) == ["whsec_new", "whsec_old"]
    assert valid_secrets(Row(), NOW + timedelta(seconds=10)) == ["whsec_new"]
    assert valid_secrets(Row(previous_webhook_secret=None), NOW) == ["whsec_new"]
    assert valid_secrets(Row(previous_secret_expires_at=None), NOW) == ["whsec_new"]


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (sign("s1", BODY, T), True),
        (sign("s2", BODY, T), True),
        (sign("s3", BODY, T), False),
        (sign("s1", BODY + b" ", T), False),
        (sign("s1", BODY, T - 300), True),
        (sign("s1", BODY, T + 300), True),
        (sign("s1", BODY, T - 301), False),
        (sign("s1", BODY, T + 301), False),
        (f"v1=deadbeef,{sign('s1', BODY, T)}", True),  # several v1 entries, one matches
        (f"t={T},v0=abc,v1={sign('s1', BODY, T).split('v1=')[1]}", True),  # unknown scheme
        (f"t={T},v1={sign('s1', BODY, T).split('v1=')[1].upper()}", True),
        (f"t={T}", False),
        (f"v1={sign('s1', BODY, T).split('v1=')[1]}", False),
        (f"t=abc,v1={sign('s1', BODY, T).split('v1=')[1]}", False),
        (f"t={T},t={T},v1=00", False),
        (f"t={T},v1=ünïcode", False),
        ("garbage", False),
        ("", False),
        (None, False),
    ],
)
def test_verify_signature(header: str | None, ok: bool) -> None:
    assert verify_signature(header, BODY, ["s1", "s2"], NOW) is ok


def test_verify_signature_without_secrets_or_with_custom_tolerance() -> None:
    assert not verify_signature(sign("s1", BODY, T), BODY, [], NOW)
    assert not verify_signature(sign("s1", BODY, T - 10), BODY, ["s1"], NOW, tolerance=5)
    assert verify_signature(sign("s1", BODY, T - 10), BODY, ["s1"], NOW, tolerance=10)
