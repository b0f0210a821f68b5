"""PUT replaces, PATCH merges: pipelines, event schemas, features and derived features
(ISSUE-8 §2: the seed's config client updates with PUT)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from tests.conftest import Keys, assert_problem

P = "/api/v1/projects/p1"
ORDER = {
    "name": "order_completed",
    "description": "An order was paid",
    "fields": [
        {"name": "order_id", "type": "string", "required": True},
        {"name": "amount", "type": "number"},
    ],
}
WEB = {
    "id": "web",
    "name": "Web shop",
    "description": "the storefront",
    "unknown_properties": "reject",
    "events": [ORDER, {"name": "page_view", "description": "seen"}],
}
SPEND = {
    "name": "spend",
    "description": "money",
    "pipeline_id": "web",
    "source_event": "order_completed",
    "aggregation": "SUM",
    "field": "amount",
    "windows": ["1h"],
}
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def dev(client: TestClient, keys: Keys) -> dict[str, str]:
    keys.project("p1")
    headers = keys.headers([Role.DEVELOPER], "p1")
    assert client.post(f"{P}/pipelines", json=WEB, headers=headers).status_code == 201
    assert client.post(f"{P}/features", json=SPEND, headers=headers).status_code == 201
    return headers


@BOTH
def test_pipeline_put_replaces_and_patch_merges(client: TestClient, dev: dict[str, str]) -> None:
    url = f"{P}/pipelines/web"
    put = client.put(url, json={"name": "Storefront"}, headers=dev)
    assert put.status_code == 200, put.text
    body = put.json()
    assert (body["name"], body["description"], body["unknown_properties"]) == (
        "Storefront",
        "",
        "allow",
    )
    assert [e["name"] for e in body["events"]] == ["order_completed", "page_view"]  # untouched
    patched = client.patch(url, json={"description": "d"}, headers=dev).json()
    assert (patched["name"], patched["description"]) == ("Storefront", "d")
    # required fields are required; the id may be repeated but not changed
    assert_problem(client.put(url, json={"description": "x"}, headers=dev), 422, field="name")
    renamed = client.put(url, json={"id": "shop", "name": "x"}, headers=dev)
    assert_problem(renamed, 422, field="id")
    same = client.put(url, json={**WEB, "events": [ORDER]}, headers=dev)
    assert same.status_code == 200, same.text
    assert [e["name"] for e in same.json()["events"]] == ["order_completed"]  # set replaced
    assert client.get(url, headers=dev).json()["unknown_properties"] == "reject"
    assert_problem(client.put(f"{P}/pipelines/nope", json={"name": "x"}, headers=dev), 404)


@BOTH
def test_pipeline_put_cannot_drop_an_event_a_feature_reads(
    client: TestClient, dev: dict[str, str]
) -> None:
    body = {"name": "Web", "events": [{"name": "page_view"}]}
    resp = client.put(f"{P}/pipelines/web", json=body, headers=dev)
    problem = assert_problem(resp, 409)
    assert "spend" in problem["detail"]
    events = client.get(f"{P}/pipelines/web/events", headers=dev).json()
    assert {e["name"] for e in events} == {"order_completed", "page_view"}  # rolled back


@BOTH
def test_event_put_replaces_and_patch_merges(client: TestClient, dev: dict[str, str]) -> None:
    url = f"{P}/pipelines/web/events/page_view"
    assert client.patch(url, json={"enabled": False}, headers=dev).json()["enabled"] is False
    fields = [{"name": "url", "type": "string"}]
    put = client.put(url, json={"fields": fields}, headers=dev)
    assert put.status_code == 200, put.text
    assert put.json() == {
        "name": "page_view",
        "description": "",
        "enabled": True,
        "fields": [{**fields[0], "required": False, "description": "", "pii": False}],
    }
    assert client.put(url, json={}, headers=dev).json()["fields"] == []  # default: none
    merged = client.patch(url, json={"description": "seen"}, headers=dev).json()
    assert (merged["description"], merged["enabled"]) == ("seen", True)
    assert_problem(client.put(url, json={"name": "other"}, headers=dev), 422, field="name")
    # replacing the fields of an event a feature reads is checked like a PATCH
    order = f"{P}/pipelines/web/events/order_completed"
    assert_problem(client.put(order, json={"fields": []}, headers=dev), 409)


@BOTH
def test_feature_put_replaces_and_patch_merges(client: TestClient, dev: dict[str, str]) -> None:
    url = f"{P}/features/spend"
    count = {"pipeline_id": "web", "source_event": "order_completed", "aggregation": "COUNT"}
    put = client.put(url, json=count, headers=dev)
    assert put.status_code == 200, put.text
    body = put.json()
    assert body["field"] is None
    assert body["description"] == ""
    assert [w["window"] for w in body["windows"]] == ["5m", "1h", "24h", "7d", "30d"]
    assert body["version"] == 2
    merged = client.patch(url, json={"description": "orders"}, headers=dev).json()
    assert (merged["aggregation"], merged["description"]) == ("COUNT", "orders")
    missing = {"pipeline_id": "web", "source_event": "order_completed"}
    assert_problem(client.put(url, json=missing, headers=dev), 422, field="aggregation")
    assert_problem(client.put(url, json={**SPEND, "name": "x"}, headers=dev), 422, field="name")
    again = client.put(url, json=SPEND, headers=dev).json()
    assert (again["aggregation"], again["field"], again["description"]) == (
        "SUM",
        "amount",
        "money",
    )
    unnamed = {k: v for k, v in SPEND.items() if k != "name"}
    assert_problem(client.put(f"{P}/features/nope", json=unnamed, headers=dev), 404)


def test_derived_put_replaces_and_patch_merges(client: TestClient, dev: dict[str, str]) -> None:
    body: dict[str, Any] = {"name": "twice", "expression": "spend_1h * 2", "description": "x2"}
    assert client.post(f"{P}/derived-features", json=body, headers=dev).status_code == 201
    url = f"{P}/derived-features/twice"
    put = client.put(url, json={"expression": "spend_1h * 3"}, headers=dev)
    assert put.status_code == 200, put.text
    assert (put.json()["expression"], put.json()["description"]) == ("spend_1h * 3", "")
    merged = client.patch(url, json={"description": "x3"}, headers=dev).json()
    assert (merged["expression"], merged["description"]) == ("spend_1h * 3", "x3")
    assert_problem(client.put(url, json={"description": "x"}, headers=dev), 422, field="expression")
