"""Deployments through HTTP: versions, pending diff, deploy, rollback, the runtime cache."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dataintel.auth.permissions import Role
from dataintel.config.deployments.active import CONFIGS
from dataintel.model.monitoring import MonitoringSettings
from dataintel.model.retention import RetentionPolicy
from dataintel.model.snapshot import AnalyticsSettings
from dataintel.storage.metadata.models import PipelineEvent
from tests.conftest import Keys, apply_yaml, assert_problem

BASE = "/api/v1/projects/shop/deployments"

V1 = """
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields:
          - {name: product_id, type: string, required: true}
          - {name: price, type: number}
features:
  - {name: cart_adds, pipeline_id: web, source_event: cart_add, aggregation: COUNT,
     windows: [5m, 1h]}
  - {name: cart_value, pipeline_id: web, source_event: cart_add, entity_key: cart_id,
     aggregation: SUM, field: price, windows: [1h]}
"""

# v2: a new event, a new field, a changed feature, a deleted feature.
V2 = """
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields:
          - {name: product_id, type: string, required: true}
          - {name: price, type: number}
          - {name: quantity, type: number}
      - name: purchase
        fields: [{name: revenue, type: number}]
features:
  - {name: cart_adds, pipeline_id: web, source_event: cart_add, aggregation: COUNT,
     windows: [24h]}
"""


def changes_of(body: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(c["kind"], c["key"], c["action"]) for c in body["changes"]}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_deploy_and_rollback_flow(app: Any, client: TestClient, keys: Keys) -> None:
    cache = app.state.dataintel.port(CONFIGS)
    apply_yaml(app, V1, deploy=False)
    dev = keys.headers([Role.DEVELOPER], "shop")
    assert cache.get("shop").version is None

    pending = client.get(f"{BASE}/pending", headers=dev).json()
    assert pending["base_version"] is None
    assert pending["has_changes"]
    assert ("pipeline", "web", "create") in changes_of(pending)
    assert ("event", "web/cart_add", "create") in changes_of(pending)
    assert ("feature", "cart_value", "create") in changes_of(pending)

    first = client.post(BASE, json={"message": "first"}, headers=dev)
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert (v1["version"], v1["kind"], v1["active"], v1["message"]) == (1, "deploy", True, "first")
    assert changes_of(v1) == changes_of(pending)
    assert cache.get("shop").version == 1  # invalidated at commit, seen at once
    assert cache.get("shop").snapshot.feature("cart_value") is not None
    assert client.get("/api/v1/projects/shop", headers=dev).json()["active_version"] == 1

    after = client.get(f"{BASE}/pending", headers=dev).json()
    assert (after["base_version"], after["has_changes"], after["changes"]) == (1, False, [])
    assert_problem(client.post(BASE, headers=dev), 409)

    apply_yaml(app, V2, deploy=False)
    pending = client.get(f"{BASE}/pending", headers=dev).json()
    assert changes_of(pending) == {
        ("event", "web/cart_add", "update"),
        ("event", "web/purchase", "create"),
        ("feature", "cart_adds", "update"),
        ("feature", "cart_value", "delete"),
    }
    update = next(c for c in pending["changes"] if c["key"] == "cart_adds")
    assert update["fields"] == ["windows", "version"]
    assert update["before"]["version"] == 1
    assert update["after"]["version"] == 2
    v2 = client.post(BASE, headers=dev).json()
    assert v2["version"] == 2
    assert v2["summary"] == {"create": 1, "update": 2, "delete": 1}
    assert cache.get("shop").version == 2

    history = client.get(BASE, headers=dev).json()
    assert [d["version"] for d in history["items"]] == [2, 1]
    assert history["total"] == 2
    assert [d["active"] for d in history["items"]] == [True, False]

    back = client.post(f"{BASE}/1/rollback", headers=dev)
    assert back.status_code == 201, back.text
    v3 = back.json()
    assert (v3["version"], v3["kind"], v3["rollback_of"]) == (3, "rollback", 1)
    assert v3["message"] == "rollback to version 1"
    assert v3["snapshot"] == client.get(f"{BASE}/1", headers=dev).json()["snapshot"]
    assert client.get(f"{BASE}/pending", headers=dev).json()["has_changes"] is False
    assert cache.get("shop").version == 3
    assert cache.get("shop").snapshot.model_dump(mode="json") == v3["snapshot"]
    assert client.get("/api/v1/projects/shop", headers=dev).json()["active_version"] == 3

    # The draft now has undeployed changes: a rollback refuses unless forced.
    apply_yaml(app, V2, deploy=False)
    assert_problem(client.post(f"{BASE}/2/rollback", json={}, headers=dev), 409)
    forced = client.post(f"{BASE}/2/rollback", json={"force": True, "message": "m"}, headers=dev)
    assert forced.status_code == 201, forced.text
    assert (forced.json()["version"], forced.json()["rollback_of"]) == (4, 2)

    assert_problem(client.get(f"{BASE}/99", headers=dev), 404)
    assert_problem(client.post(f"{BASE}/99/rollback", headers=dev), 404)


def test_feature_versions_never_repeat_after_rollback(
    app: Any, client: TestClient, keys: Keys
) -> None:
    apply_yaml(app, V1, deploy=False)
    dev = keys.headers([Role.DEVELOPER], "shop")
    client.post(BASE, headers=dev)  # cart_adds@1
    apply_yaml(app, V2, deploy=False)
    client.post(BASE, headers=dev)  # cart_adds@2
    client.post(f"{BASE}/1/rollback", headers=dev)  # cart_adds@1 again, exactly
    third = V1.replace("windows: [5m, 1h]", "windows: [7d]")
    result = apply_yaml(app, third, deploy=False)
    assert [c.after["version"] for c in result.changes if c.after] == [3]


def test_first_deploy_of_an_empty_project_then_nothing(client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    dev = keys.headers([Role.ADMIN], "shop")
    first = client.post(BASE, json={"message": "empty"}, headers=dev)
    assert first.status_code == 201
    assert first.json()["snapshot"] == {
        "pipelines": [],
        "features": [],
        "derived": [],
        "batch": [],
        "analytics": AnalyticsSettings().model_dump(mode="json"),
        "retention": RetentionPolicy().model_dump(mode="json"),
        "monitoring": MonitoringSettings().model_dump(mode="json"),
        "quality": {"rules": []},
    }
    body = assert_problem(client.post(BASE, headers=dev), 409)
    assert "nothing to deploy" in body["detail"]


def test_rollback_to_the_same_config_is_refused(app: Any, client: TestClient, keys: Keys) -> None:
    apply_yaml(app, V1, deploy=False)
    dev = keys.headers([Role.DEVELOPER], "shop")
    client.post(BASE, headers=dev)
    assert_problem(client.post(f"{BASE}/1/rollback", headers=dev), 409)


def test_deploy_rechecks_features_against_the_draft(
    app: Any, client: TestClient, keys: Keys
) -> None:
    apply_yaml(app, V1, deploy=False)
    dev = keys.headers([Role.DEVELOPER], "shop")
    with app.state.dataintel.sessions.begin() as session:  # price becomes a string field
        event = session.scalars(select(PipelineEvent).where(PipelineEvent.name == "cart_add")).one()
        event.fields = [
            {**f, "type": "string"} if f["name"] == "price" else f for f in event.fields
        ]
    body = assert_problem(client.post(BASE, headers=dev), 422, field="cart_value")
    assert body["errors"][0]["loc"] == ["features", "cart_value", "field"]
    assert client.get(BASE, headers=dev).json()["total"] == 0


def test_permissions_and_tenancy(app: Any, client: TestClient, keys: Keys) -> None:
    apply_yaml(app, V1, deploy=False)
    keys.project("other")
    analyst = keys.headers([Role.ANALYST], "shop")
    assert client.get(f"{BASE}/pending", headers=analyst).status_code == 200
    assert_problem(client.post(BASE, headers=analyst), 403)
    assert_problem(client.post(f"{BASE}/1/rollback", headers=analyst), 403)
    assert_problem(client.get(BASE, headers=keys.headers([Role.INGEST], "shop")), 403)
    assert_problem(client.get(BASE, headers=keys.headers([Role.ADMIN], "other")), 404)
    assert_problem(client.get(BASE), 401)


def test_payload_validation_and_pagination(app: Any, client: TestClient, keys: Keys) -> None:
    apply_yaml(app, V1, deploy=False)
    dev = keys.headers([Role.DEVELOPER], "shop")
    assert_problem(client.post(BASE, json={"msg": "typo"}, headers=dev), 422, field="msg")
    assert_problem(client.post(BASE, json={"message": 1}, headers=dev), 422, field="message")
    client.post(BASE, headers=dev)
    apply_yaml(app, V2, deploy=False)
    client.post(BASE, headers=dev)
    page = client.get(BASE, params={"limit": 1, "offset": 1}, headers=dev).json()
    assert [d["version"] for d in page["items"]] == [1]
    assert (page["total"], page["limit"], page["offset"]) == (2, 1, 1)
    assert_problem(client.get(BASE, params={"limit": 0}, headers=dev), 422, field="limit")
    assert_problem(client.get(f"{BASE}/0", headers=dev), 422)
    assert_problem(client.get(BASE, params={"offset": 2**63}, headers=dev), 422, field="offset")
    assert_problem(client.get(f"{BASE}/{2**63}", headers=dev), 422, field="version")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_concurrent_deploys_make_one_version(app: Any, client: TestClient, keys: Keys) -> None:
    apply_yaml(app, V1, deploy=False)
    dev = keys.headers([Role.DEVELOPER], "shop")
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def deploy() -> None:
        barrier.wait()
        statuses.append(client.post(BASE, headers=dev).status_code)

    threads = [threading.Thread(target=deploy) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409, 409, 409]
    assert [d["version"] for d in client.get(BASE, headers=dev).json()["items"]] == [1]


def test_feature_versions_are_never_reused_after_a_rollback(client: TestClient, keys: Keys) -> None:
    """A version number names one definition forever: after rolling back to a feature's v1,
    changing it again through the features API yields a version above every earlier one."""
    keys.project("shop")
    dev = keys.headers([Role.DEVELOPER], "shop")
    feats = "/api/v1/projects/shop/features"
    pipeline = {
        "id": "web",
        "name": "Web",
        "events": [{"name": "cart_add", "fields": [{"name": "price", "type": "number"}]}],
    }
    assert client.post("/api/v1/projects/shop/pipelines", json=pipeline, headers=dev).is_success
    feature = {
        "name": "spend",
        "pipeline_id": "web",
        "source_event": "cart_add",
        "aggregation": "SUM",
        "field": "price",
        "windows": ["1h"],
    }
    assert client.post(feats, json=feature, headers=dev).json()["version"] == 1
    assert client.post(BASE, json={}, headers=dev).status_code == 201
    assert (
        client.patch(f"{feats}/spend", json={"windows": ["24h"]}, headers=dev).json()["version"]
        == 2
    )
    assert client.post(BASE, json={}, headers=dev).status_code == 201
    assert client.post(f"{BASE}/1/rollback", json={}, headers=dev).status_code == 201
    assert client.get(f"{feats}/spend", headers=dev).json()["version"] == 1
    again = client.patch(f"{feats}/spend", json={"windows": ["7d"]}, headers=dev).json()
    assert again["version"] == 3
    client.delete(f"{feats}/spend", headers=dev)
    recreated = client.post(feats, json=feature, headers=dev).json()
    # v3 was never deployed (no state was ever built for it), so the re-created definition
    # may take it; what matters is that it is above every deployed version.
    assert recreated["version"] == 3
