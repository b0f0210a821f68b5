"""POST /v1/quality/validate with a sample, and the rule config routes' checks: custom SQL
escapes refused with a 422 naming the field, per-type parameters validated, pending diff."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.settings import Settings
from tests.conftest import Keys, assert_problem
from tests.quality.conftest import deploy_shop, now

BASE = "/api/v1/projects/shop/quality"


@pytest.fixture
def engine() -> str:
    return "duckdb"


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path, engine: str) -> Settings:
    url = f"duckdb:///{tmp_path}/a.duckdb" if engine == "duckdb" else f"chdb:///{tmp_path}/ch"
    return make_settings(analytics_url=url)


@pytest.mark.parametrize("engine", ["duckdb", "chdb"])
def test_a_sample_is_checked_by_schema_and_row_rules(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    deploy_shop(app)
    analyst = keys.headers(["analyst"], "shop")
    ts = now().isoformat()
    sample = [
        {"event": "view", "timestamp": ts, "properties": {"price": 10, "brand": "a"}},
        {"event": "view", "timestamp": ts, "properties": {"price": 500}},  # range, missing
        {"event": "view", "timestamp": ts, "properties": {"price": "x"}},  # schema
        {"event": "nope", "timestamp": ts},
    ]
    resp = client.post(
        "/v1/quality/validate", json={"pipeline": "web", "events": sample}, headers=analyst
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    accepted = [e["accepted"] for e in body["events"]]
    assert accepted == [True, True, False, False]
    assert body["events"][0]["problems"] == []
    assert {p["rule"] for p in body["events"][1]["problems"]} == {"brand_missing", "price_range"}
    assert body["events"][2]["problems"][0]["code"] == "wrong_type"
    assert body["events"][3]["problems"][0]["code"] == "unknown_event"
    rules = {r["rule"]: r for r in body["rules"]}
    assert (rules["brand_missing"]["passing"], rules["brand_missing"]["total"]) == (1, 2)
    assert (rules["price_range"]["passing"], rules["price_range"]["total"]) == (1, 2)
    assert rules["price_range"]["status"] == "fail"
    missing = client.post("/v1/quality/validate", json={"events": sample}, headers=analyst)
    assert_problem(missing, 422, field="pipeline")
    too_many = client.post(
        "/v1/quality/validate", json={"pipeline": "web", "events": [{}] * 1001}, headers=analyst
    )
    assert_problem(too_many, 422, field="events")


ESCAPES = [
    "(SELECT count(*) FROM events) > 0",
    "user_id IN (SELECT user_id FROM events)",
    "read_csv('/etc/passwd') IS NOT NULL",
    "getenv('HOME') = 'x'",
    "project_id = 'other'",
    "events.user_id = 'x'",
    "1 = 1; DROP TABLE events",
    "EXISTS (SELECT 1)",
]


@pytest.mark.parametrize("predicate", ESCAPES)
def test_custom_sql_escapes_are_refused(client: TestClient, keys: Keys, predicate: str) -> None:
    keys.project("shop")
    dev = keys.headers(["developer"], "shop")
    rule = {"name": "x", "type": "custom_sql", "predicate": predicate}
    resp = client.put(BASE, json={"rules": [rule]}, headers=dev)
    assert_problem(resp, 422, field="predicate")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_rule_routes_validate_and_show_in_the_pending_diff(client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    dev = keys.headers(["developer"], "shop")
    bad = {"name": "r", "type": "range", "column": "properties.price"}
    assert_problem(client.put(f"{BASE}/rules/r", json=bad, headers=dev), 422, field="min")
    twice = {"rules": [{"name": "a", "type": "schema"}, {"name": "a", "type": "schema"}]}
    assert_problem(client.put(BASE, json=twice, headers=dev), 422, field="twice")
    wrong = {"name": "r", "type": "missing", "column": "properties.a b"}
    assert_problem(client.put(f"{BASE}/rules/r", json=wrong, headers=dev), 422, field="column")
    ok = {"name": "r", "type": "regex", "column": "user_id", "pattern": "u[0-9]+"}
    assert client.put(f"{BASE}/rules/r", json=ok, headers=dev).status_code == 200
    assert client.get(f"{BASE}/rules/r", headers=dev).json()["rule"]["pattern"] == "u[0-9]+"
    pending = client.get("/api/v1/projects/shop/deployments/pending", headers=dev).json()
    assert {"kind": "quality", "key": "r", "action": "create"}.items() <= next(
        c for c in pending["changes"] if c["kind"] == "quality"
    ).items()
    ingest = keys.headers(["ingest"], "shop")
    assert_problem(client.put(f"{BASE}/rules/r", json=ok, headers=ingest), 403)
    assert client.delete(f"{BASE}/rules/r", headers=dev).status_code == 204
    assert_problem(client.get(f"{BASE}/rules/r", headers=dev), 404)
