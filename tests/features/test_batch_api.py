"""The batch-features config resource: CRUD like the derived features, versions, the pending
diff and deploy, `dataintel apply`, and bad definitions refused with 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Keys, apply_yaml, assert_problem
from tests.features.batch_data import PIPELINE_YAML

from dataintel.auth.permissions import Role

BASE = "/api/v1/projects/shop/batch-features"
POPULARITY = {
    "name": "category_popularity",
    "pipeline_id": "web",
    "source_event": "view",
    "entity_key": "category_code",
    "aggregation": "COUNT",
    "window": "30d",
    "schedule": "1h",
    "ttl": "2h",
}
CONVERSION = {
    "name": "brand_conversion_rate",
    "entity_key": "brand",
    "expression": "count_if(event = 'purchase') / nullif(count_if(event = 'view'), 0)",
}
BOTH = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def shop(app: Any, client: TestClient, keys: Keys) -> dict[str, str]:
    keys.project("shop")
    apply_yaml(app, "project: {id: shop, name: Shop}\n" + PIPELINE_YAML)
    return keys.headers([Role.DEVELOPER], "shop")


@BOTH
def test_crud_versions_and_deploy(client: TestClient, shop: dict[str, str]) -> None:
    created = client.post(BASE, json=POPULARITY, headers=shop)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    assert created.json()["reads"] == []
    made = client.post(BASE, json=CONVERSION, headers=shop)
    assert made.status_code == 201, made.text
    assert made.json()["reads"] == ["event"]
    assert made.json()["window"] == "30d"
    assert client.post(BASE, json=CONVERSION, headers=shop).status_code == 409
    listed = client.get(BASE, headers=shop).json()
    assert [b["name"] for b in listed] == ["brand_conversion_rate", "category_popularity"]

    same = client.patch(f"{BASE}/category_popularity", json={"ttl": "2h"}, headers=shop)
    assert same.json()["version"] == 1  # nothing changed
    patched = client.patch(f"{BASE}/category_popularity", json={"ttl": "10m"}, headers=shop)
    assert patched.json()["version"] == 2
    assert patched.json()["ttl"] == "10m"
    put = client.put(f"{BASE}/category_popularity", json={**POPULARITY, "name": None}, headers=shop)
    assert put.json()["version"] == 3
    assert put.json()["ttl"] == "2h"
    # PATCH can switch forms: expression in, aggregation and its event out
    switched = client.patch(
        f"{BASE}/category_popularity",
        json={"aggregation": None, "source_event": None, "expression": "count(*)"},
        headers=shop,
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["aggregation"] is None

    pending = client.get("/api/v1/projects/shop/deployments/pending", headers=shop).json()
    kinds = {(c["kind"], c["key"], c["action"]) for c in pending["changes"]}
    assert ("batch", "category_popularity", "create") in kinds
    deployed = client.post("/api/v1/projects/shop/deployments", json={}, headers=shop)
    assert deployed.status_code == 201, deployed.text
    batch = deployed.json()["snapshot"]["batch"]
    assert [(b["name"], b["version"]) for b in batch] == [
        ("brand_conversion_rate", 1),
        ("category_popularity", 4),
    ]
    # deleted and re-created: a new version, never an old one
    assert client.delete(f"{BASE}/category_popularity", headers=shop).status_code == 204
    again = client.post(BASE, json=POPULARITY, headers=shop)
    assert again.json()["version"] == 5
    assert client.get(f"{BASE}/nope", headers=shop).status_code == 404


BAD_EXPRESSIONS = [
    ({"expression": "(SELECT count(*) FROM events)"}, "expression"),
    ({"expression": "count(*) FROM events"}, "expression"),
    ({"expression": "sum(x) + (SELECT 1)"}, "expression"),
    ({"expression": "read_csv('/etc/passwd')"}, "expression"),
    ({"expression": "count(*) OVER ()"}, "expression"),
    ({"expression": "price"}, "expression"),
    ({"expression": "sum(secret_field)"}, "expression"),
    ({"expression": "max(events.price)"}, "expression"),
    ({"expression": "count(*); DROP TABLE events"}, "expression"),
    ({"entity_key": "nowhere"}, "entity_key"),
    ({"entity_key": "price; --"}, "entity_key"),
    ({"window": "10y"}, "window"),
    ({"schedule": "lifetime"}, "schedule"),
    ({"ttl": "0s"}, "ttl"),
    ({"aggregation": "COUNT"}, "body"),  # both forms
    ({"pipeline_id": "nope"}, "pipeline_id"),
]
BAD_AGGREGATIONS = [
    ({"source_event": None}, "source_event"),
    ({"source_event": "refund"}, "source_event"),
    ({"aggregation": "SUM", "field": "brand"}, "field"),
    ({"aggregation": "SUM"}, "field"),
    ({"aggregation": "LAST", "field": "price"}, "aggregation"),
    ({"aggregation": "AVG", "field": "unknown"}, "field"),
    ({"entity_key": "price_list"}, "entity_key"),
    ({"name": "Bad Name"}, "name"),
    ({"description": "x" * 2001}, "description"),
]


def test_bad_definitions_are_422_naming_the_field(client: TestClient, shop: dict[str, str]) -> None:
    cases = [(CONVERSION, *case) for case in BAD_EXPRESSIONS]
    cases += [(POPULARITY, *case) for case in BAD_AGGREGATIONS]
    for base, change, field in cases:
        resp = client.post(BASE, json={**base, **change}, headers=shop)
        assert_problem(resp, 422, field=field)
        patched = client.patch(
            f"{BASE}/x", json={k: v for k, v in change.items() if k != "name"}, headers=shop
        )
        assert patched.status_code in (404, 422), patched.text  # never a 500
    assert client.get(BASE, headers=shop).json() == []


def test_a_name_taken_by_a_realtime_value_is_refused(
    app: Any, client: TestClient, shop: dict[str, str]
) -> None:
    features = """
features:
  - {name: views, pipeline_id: web, source_event: view, aggregation: COUNT, windows: [1h]}
"""
    apply_yaml(app, "project: {id: shop, name: Shop}\n" + PIPELINE_YAML + features)
    resp = client.post(BASE, json={**POPULARITY, "name": "views_1h"}, headers=shop)
    assert_problem(resp, 422, field="name")


def test_permissions_and_tenants(client: TestClient, keys: Keys, shop: dict[str, str]) -> None:
    assert client.post(BASE, json=POPULARITY, headers=shop).status_code == 201
    analyst = keys.headers([Role.ANALYST], "shop")
    assert client.get(BASE, headers=analyst).status_code == 200
    assert_problem(client.post(BASE, json=CONVERSION, headers=analyst), 403)
    assert_problem(client.delete(f"{BASE}/category_popularity", headers=analyst), 403)
    keys.project("other")
    other = keys.headers([Role.DEVELOPER], "other")
    assert client.get(BASE, headers=other).status_code in (403, 404)
    assert client.get(f"{BASE}/category_popularity", headers=other).status_code in (403, 404)
    assert client.get("/api/v1/projects/other/batch-features", headers=other).json() == []


def test_apply_declares_batch_features_and_checks_them(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    text = (
        "project: {id: shop, name: Shop}\n"
        + PIPELINE_YAML
        + """
batch:
  - {name: category_popularity, pipeline_id: web, source_event: view,
     entity_key: category_code, aggregation: COUNT}
  - name: brand_conversion_rate
    entity_key: brand
    expression: "count_if(event = 'purchase') / nullif(count_if(event = 'view'), 0)"
"""
    )
    result = apply_yaml(app, text)
    assert {(c.kind, c.key) for c in result.changes} >= {
        ("batch", "category_popularity"),
        ("batch", "brand_conversion_rate"),
    }
    assert not apply_yaml(app, text).changes  # applying twice plans nothing
    changed = apply_yaml(app, text.replace("aggregation: COUNT}", "aggregation: COUNT, ttl: 5m}"))
    assert [(c.kind, c.action, c.fields) for c in changed.changes] == [
        ("batch", "update", ["ttl", "version"])
    ]
    bad = text.replace("count_if(event = 'purchase')", "(SELECT 1)")
    with pytest.raises(Exception, match=r"batch\[1\]\.expression"):
        apply_yaml(app, bad)


def test_a_deploy_refuses_a_batch_feature_its_pipelines_no_longer_fit(
    client: TestClient, shop: dict[str, str]
) -> None:
    made = client.post(
        BASE, json={**POPULARITY, "aggregation": "SUM", "field": "price"}, headers=shop
    )
    assert made.status_code == 201, made.text
    events = "/api/v1/projects/shop/pipelines/web/events/view"
    assert client.delete(events, headers=shop).status_code == 204
    resp = client.post("/api/v1/projects/shop/deployments", json={}, headers=shop)
    body = assert_problem(resp, 422, field="source_event")
    assert "batch feature 'category_popularity'" in body["detail"]
