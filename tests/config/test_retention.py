"""The retention policy through the config plane: defaults, PUT, the pending diff, deploy,
rollback, `dataintel apply` YAML, validation naming the field, permissions, and the runs view
before any run."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.config.deployments.active import CONFIGS
from tests.conftest import Keys, apply_yaml, assert_problem

BASE = "/api/v1/projects/shop"
POLICY = f"{BASE}/retention"


@pytest.fixture
def shop(keys: Keys) -> str:
    return keys.project("shop")


def deployed(app: Any) -> dict[str, Any]:
    return app.state.dataintel.port(CONFIGS).get("shop").snapshot.retention.model_dump()


def test_defaults_put_pending_deploy_and_rollback(
    app: Any, client: TestClient, admin: dict[str, str], shop: str
) -> None:
    got = client.get(POLICY, headers=admin).json()
    assert got == {
        "project_id": "shop",
        "events_days": None,
        "event_overrides": {},
        "dead_letters_days": None,
        "reports_days": None,
    }
    assert client.post(f"{BASE}/deployments", headers=admin).status_code == 201  # version 1
    body = {"events_days": 400, "event_overrides": {"view": 30, "purchase": None}}
    put = client.put(POLICY, json={**body, "dead_letters_days": 30}, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json()["reports_days"] is None  # omitted: the default
    assert client.get(POLICY, headers=admin).json()["event_overrides"] == body["event_overrides"]
    assert deployed(app)["events_days"] is None  # pending, not deployed
    pending = client.get(f"{BASE}/deployments/pending", headers=admin).json()
    (change,) = pending["changes"]
    assert (change["kind"], change["key"], change["action"]) == ("retention", "retention", "update")
    assert set(change["fields"]) == {"events_days", "event_overrides", "dead_letters_days"}
    assert client.post(f"{BASE}/deployments", headers=admin).status_code == 201  # version 2
    assert deployed(app)["event_overrides"] == {"view": 30, "purchase": None}
    runs = client.get(f"{POLICY}/runs", headers=admin).json()
    assert runs["deployed_version"] == 2
    assert runs["policy"]["events_days"] == 400
    assert runs["status"] == "never"
    back = client.post(f"{BASE}/deployments/1/rollback", headers=admin)
    assert back.status_code == 201, back.text
    assert deployed(app)["events_days"] is None
    assert client.get(POLICY, headers=admin).json()["events_days"] is None  # draft too


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events_days": 0}, "events_days"),
        ({"events_days": 36501}, "events_days"),
        ({"events_days": "a year"}, "events_days"),
        ({"dead_letters_days": -1}, "dead_letters_days"),
        ({"reports_days": 1.5}, "reports_days"),
        ({"event_overrides": {"bad name": 3}}, "event_overrides"),
        ({"event_overrides": {"view": 0}}, "event_overrides"),
        ({"keep": "forever"}, "keep"),
    ],
)
def test_invalid_policies_are_422_naming_the_field(
    client: TestClient, admin: dict[str, str], shop: str, body: dict[str, Any], field: str
) -> None:
    assert_problem(client.put(POLICY, json=body, headers=admin), 422, field=field)


def test_reading_needs_config_read_and_writing_config_write(
    client: TestClient, keys: Keys, shop: str
) -> None:
    analyst = keys.headers(["analyst"], "shop")
    assert client.get(POLICY, headers=analyst).status_code == 200
    assert client.get(f"{POLICY}/runs", headers=analyst).status_code == 200
    assert_problem(client.put(POLICY, json={}, headers=analyst), 403)
    other = keys.headers(["admin"], keys.project("other"))
    assert_problem(client.get(POLICY, headers=other), 404)


YAML = """
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events: [{name: view}, {name: purchase}]
retention:
  events_days: 400
  event_overrides: {view: 30}
  reports_days: 7
"""


def test_the_yaml_retention_section_is_applied_and_deployed(app: Any) -> None:
    result = apply_yaml(app, YAML)
    assert any(c.kind == "retention" for c in result.changes)
    assert deployed(app)["reports_days"] == 7
    assert deployed(app)["event_overrides"] == {"view": 30}
    again = apply_yaml(app, YAML)
    assert again.changes == []


def test_a_bad_yaml_policy_names_its_place(app: Any) -> None:
    with pytest.raises(Exception, match=r"retention\.events_days"):
        apply_yaml(app, YAML.replace("events_days: 400", "events_days: 0"))
