"""Feature definitions through HTTP: validation against the draft pipelines, versions, access."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from tests.conftest import Keys, assert_problem

BASE = "/api/v1/projects/p1/features"
PIPELINES = "/api/v1/projects/p1/pipelines"

WEB = {
    "id": "web",
    "name": "Web shop",
    "events": [
        {
            "name": "order_completed",
            "fields": [
                {"name": "order_id", "type": "string"},
                {"name": "amount", "type": "number"},
                {"name": "currency", "type": "string"},
                {"name": "paid", "type": "boolean"},
                {"name": "paid_at", "type": "timestamp"},
                {"name": "address", "type": "object"},
            ],
        },
        {"name": "page_view", "fields": [{"name": "url", "type": "string"}]},
    ],
}
SPEND = {
    "name": "spend",
    "description": "Money spent",
    "pipeline_id": "web",
    "source_event": "order_completed",
    "aggregation": "SUM",
    "field": "amount",
    "windows": ["5m", "24h", "30d", "365d", "lifetime"],
}


@pytest.fixture
def dev(client: TestClient, keys: Keys) -> dict[str, str]:
    keys.project("p1")
    headers = keys.headers([Role.DEVELOPER], "p1")
    assert client.post(PIPELINES, json=WEB, headers=headers).status_code == 201
    return headers


@pytest.fixture
def spend(client: TestClient, dev: dict[str, str]) -> dict[str, Any]:
    resp = client.post(BASE, json=SPEND, headers=dev)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_feature_lifecycle(client: TestClient, dev: dict[str, str]) -> None:
    created = client.post(BASE, json=SPEND, headers=dev)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["version"] == 1
    assert body["entity_key"] == "user_id"
    assert body["enabled"] is True
    assert body["windows"] == [
        {
            "window": "5m",
            "seconds": 300,
            "granularity": "1s",
            "granularity_seconds": 1,
            "value_name": "spend_5m",
        },
        {
            "window": "24h",
            "seconds": 86400,
            "granularity": "1m",
            "granularity_seconds": 60,
            "value_name": "spend_24h",
        },
        {
            "window": "30d",
            "seconds": 2592000,
            "granularity": "1h",
            "granularity_seconds": 3600,
            "value_name": "spend_30d",
        },
        {
            "window": "365d",
            "seconds": 31536000,
            "granularity": "1d",
            "granularity_seconds": 86400,
            "value_name": "spend_365d",
        },
        {
            "window": "lifetime",
            "seconds": None,
            "granularity": None,
            "granularity_seconds": None,
            "value_name": "spend_lifetime",
        },
    ]
    assert client.get(f"{BASE}/spend", headers=dev).json() == body
    assert [f["name"] for f in client.get(BASE, headers=dev).json()] == ["spend"]

    patched = client.patch(f"{BASE}/spend", json={"windows": ["1h"]}, headers=dev)
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    assert [w["value_name"] for w in patched.json()["windows"]] == ["spend_1h"]

    assert client.delete(f"{BASE}/spend", headers=dev).status_code == 204
    assert_problem(client.get(f"{BASE}/spend", headers=dev), 404)
    assert client.get(BASE, headers=dev).json() == []


def test_default_windows(client: TestClient, dev: dict[str, str]) -> None:
    payload = {k: v for k, v in SPEND.items() if k != "windows"}
    body = client.post(BASE, json=payload, headers=dev).json()
    assert [w["window"] for w in body["windows"]] == ["5m", "1h", "24h", "7d", "30d"]


def test_list_filters_by_pipeline(client: TestClient, dev: dict[str, str], spend: Any) -> None:
    app_pipeline = {"id": "app", "name": "App", "events": [{"name": "open"}]}
    assert client.post(PIPELINES, json=app_pipeline, headers=dev).status_code == 201
    opens = {
        "name": "opens",
        "pipeline_id": "app",
        "source_event": "open",
        "aggregation": "COUNT",
    }
    assert client.post(BASE, json=opens, headers=dev).status_code == 201
    assert [f["name"] for f in client.get(BASE, headers=dev).json()] == ["opens", "spend"]
    by_app = client.get(BASE, params={"pipeline_id": "app"}, headers=dev).json()
    assert [f["name"] for f in by_app] == ["opens"]
    by_web = client.get(BASE, params={"pipeline_id": "web"}, headers=dev).json()
    assert [f["name"] for f in by_web] == ["spend"]
    assert client.get(BASE, params={"pipeline_id": "none"}, headers=dev).json() == []


def test_duplicate_feature_is_409(client: TestClient, dev: dict[str, str], spend: Any) -> None:
    assert_problem(client.post(BASE, json=SPEND, headers=dev), 409, field="spend")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"field": "currency"}, "/body/field"),  # SUM of a string
        ({"aggregation": "AVG", "field": "paid"}, "/body/field"),
        ({"aggregation": "COUNT_DISTINCT", "field": "address"}, "/body/field"),
        ({"field": "nope"}, "/body/field"),
        ({"field": None}, "/body/field"),  # SUM needs a field
        ({"source_event": "checkout"}, "/body/source_event"),
        ({"pipeline_id": "app"}, "/body/pipeline_id"),
        ({"entity_key": "paid"}, "/body/entity_key"),  # a boolean field
        ({"entity_key": "nope"}, "/body/entity_key"),
        ({"windows": ["7x"]}, "/body/windows"),
        ({"windows": ["10s"]}, "/body/windows"),
        ({"windows": ["400d"]}, "/body/windows"),
        ({"windows": []}, "/body/windows"),
        ({"windows": ["1h", "60m"]}, "/body/windows"),
        ({"name": "Spend"}, "/body/name"),
        ({"aggregation": "MEDIAN"}, "/body/aggregation"),
        ({"colour": "red"}, "/body/colour"),
    ],
)
def test_create_422_names_the_field(
    client: TestClient, dev: dict[str, str], change: dict[str, Any], field: str
) -> None:
    resp = client.post(BASE, json={**SPEND, **change}, headers=dev)
    assert_problem(resp, 422, field=field)


@pytest.mark.parametrize(
    "change",
    [
        {"aggregation": "COUNT", "field": None},  # COUNT without a field
        {"aggregation": "COUNT", "field": "currency"},
        {"aggregation": "MIN", "field": "paid_at"},  # MIN on a timestamp
        {"aggregation": "MAX", "field": "paid_at"},
        {"aggregation": "COUNT_DISTINCT", "field": "currency"},
        {"aggregation": "LAST", "field": "paid"},
        {"entity_key": "order_id"},  # a declared string field
        {"entity_key": "cart_id"},
        {"entity_key": "session_id"},
        {"windows": ["30s", "200s", "7d"]},
    ],
)
def test_valid_definitions(client: TestClient, dev: dict[str, str], change: dict[str, Any]) -> None:
    payload = {**SPEND, **change}
    if payload["field"] is None:
        del payload["field"]
    resp = client.post(BASE, json=payload, headers=dev)
    assert resp.status_code == 201, resp.text
    assert resp.json()["field"] == payload.get("field")


def test_validates_against_the_draft(client: TestClient, dev: dict[str, str]) -> None:
    """An event added a moment ago (not deployed) can be used at once."""
    event = {"name": "cart_updated", "fields": [{"name": "items", "type": "number"}]}
    assert client.post(f"{PIPELINES}/web/events", json=event, headers=dev).status_code == 201
    feature = {**SPEND, "source_event": "cart_updated", "field": "items", "name": "items"}
    assert client.post(BASE, json=feature, headers=dev).status_code == 201


def test_version_bumps_only_on_change(client: TestClient, dev: dict[str, str], spend: Any) -> None:
    path = f"{BASE}/spend"

    def patch(change: dict[str, Any]) -> dict[str, Any]:
        resp = client.patch(path, json=change, headers=dev)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    assert patch({})["version"] == 1
    assert patch({"windows": SPEND["windows"], "field": "amount"})["version"] == 1
    assert patch({"description": "Spent money"})["version"] == 2
    assert patch({"description": "Spent money"})["version"] == 2
    assert patch({"aggregation": "AVG"})["version"] == 3
    assert patch({"enabled": False})["version"] == 4
    cleared = patch({"aggregation": "COUNT", "field": None})
    assert cleared["version"] == 5
    assert cleared["field"] is None
    assert patch({"aggregation": "COUNT"})["version"] == 5
    assert client.get(path, headers=dev).json()["version"] == 5


def test_patch_422s_leave_the_feature_alone(
    client: TestClient, dev: dict[str, str], spend: Any
) -> None:
    path = f"{BASE}/spend"
    assert_problem(client.patch(path, json={"field": None}, headers=dev), 422, field="/body/field")
    assert_problem(
        client.patch(path, json={"field": "currency"}, headers=dev), 422, field="/body/field"
    )
    assert_problem(
        client.patch(path, json={"aggregation": None}, headers=dev), 422, field="aggregation"
    )
    assert_problem(client.patch(path, json={"windows": ["7x"]}, headers=dev), 422, field="windows")
    assert_problem(client.patch(path, json={"name": "other"}, headers=dev), 422, field="name")
    assert client.get(path, headers=dev).json() == spend


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"description": "x"}), ("DELETE", None)]
)
def test_unknown_feature_is_404(
    client: TestClient, dev: dict[str, str], method: str, body: Any
) -> None:
    assert_problem(client.request(method, f"{BASE}/nope", json=body, headers=dev), 404)


def test_roles(client: TestClient, keys: Keys, dev: dict[str, str], spend: Any) -> None:
    for role in (Role.ANALYST, Role.SERVICE):
        reader = keys.headers([role], "p1")
        assert client.get(BASE, headers=reader).status_code == 200
        assert client.get(f"{BASE}/spend", headers=reader).status_code == 200
        assert_problem(client.post(BASE, json={**SPEND, "name": "x"}, headers=reader), 403)
        assert_problem(client.patch(f"{BASE}/spend", json={}, headers=reader), 403)
        assert_problem(client.delete(f"{BASE}/spend", headers=reader), 403)
    for role in (Role.INGEST, Role.COMPLIANCE):
        assert_problem(client.get(BASE, headers=keys.headers([role], "p1")), 403)
    admin = keys.headers([Role.ADMIN], "p1")
    assert client.patch(f"{BASE}/spend", json={"enabled": False}, headers=admin).status_code == 200


def test_other_projects_are_unreachable(
    client: TestClient, keys: Keys, admin: dict[str, str], spend: Any
) -> None:
    keys.project("p2")
    other = keys.headers([Role.DEVELOPER], "p2")
    assert_problem(client.get(f"{BASE}/spend", headers=other), 404)
    assert_problem(client.delete(f"{BASE}/spend", headers=other), 404)
    p2 = "/api/v1/projects/p2/features"
    assert client.get(p2, headers=other).json() == []
    assert_problem(client.get(f"{p2}/spend", headers=admin), 404)
    # p1's pipelines do not exist for p2's features
    assert_problem(client.post(p2, json=SPEND, headers=other), 422, field="/body/pipeline_id")
