"""Analytics settings through the config plane (API, pending diff, deploy, rollback, YAML)
and the platform pipeline template (API, YAML, the demo project)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.config.declarative.spec import demo, parse
from dataintel.config.deployments.active import CONFIGS
from dataintel.model.platform import PLATFORM_PIPELINE
from tests.conftest import Keys, apply_yaml, assert_problem

BASE = "/api/v1/projects/shop"
SETTINGS = f"{BASE}/analytics-settings"


@pytest.fixture
def shop(keys: Keys) -> str:
    return keys.project("shop")


def deployed(app: Any) -> dict[str, Any]:
    return app.state.dataintel.port(CONFIGS).get("shop").snapshot.analytics.model_dump()


def test_defaults_put_pending_deploy_and_rollback(
    app: Any, client: TestClient, admin: dict[str, str], shop: str
) -> None:
    got = client.get(SETTINGS, headers=admin).json()
    assert got["abandon_after"] == "30m"
    assert got["purchase_event"] == "purchase"
    assert client.post(f"{BASE}/deployments", headers=admin).status_code == 201  # version 1
    body = {"abandon_after": "2h", "cart_events": ["cart_add"], "purchase_event": "order"}
    put = client.put(SETTINGS, json=body, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json()["outcome_horizon"] == "7d"  # omitted: the default
    assert client.get(SETTINGS, headers=admin).json()["abandon_after"] == "2h"
    assert deployed(app)["abandon_after"] == "30m"  # pending, not deployed
    pending = client.get(f"{BASE}/deployments/pending", headers=admin).json()
    (change,) = pending["changes"]
    assert (change["kind"], change["key"], change["action"]) == ("analytics", "analytics", "update")
    assert set(change["fields"]) == {"abandon_after", "cart_events", "purchase_event"}
    assert client.post(f"{BASE}/deployments", headers=admin).status_code == 201  # version 2
    assert deployed(app)["abandon_after"] == "2h"
    back = client.post(f"{BASE}/deployments/1/rollback", headers=admin)
    assert back.status_code == 201, back.text
    assert deployed(app)["abandon_after"] == "30m"
    assert client.get(SETTINGS, headers=admin).json()["abandon_after"] == "30m"  # draft too


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"abandon_after": "soon"}, "abandon_after"),
        ({"outcome_horizon": "lifetime"}, "outcome_horizon"),
        ({"attribution_window": "400d"}, "attribution_window"),
        ({"purchase_event": "bad name"}, "purchase_event"),
        ({"revenue_field": "a.b"}, "revenue_field"),
        ({"cart_events": []}, "cart_events"),
        ({"cart_events": ["cart_add", "cart_add"]}, "cart_events"),
        ({"cart_events": ["purchase"]}, "cart_events"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_settings_are_422_naming_the_field(
    client: TestClient, admin: dict[str, str], shop: str, body: dict[str, Any], field: str
) -> None:
    assert_problem(client.put(SETTINGS, json=body, headers=admin), 422, field=field)


def test_reading_needs_config_read_and_writing_config_write(
    client: TestClient, keys: Keys, shop: str
) -> None:
    analyst = keys.headers(["analyst"], "shop")
    assert client.get(SETTINGS, headers=analyst).status_code == 200
    assert_problem(client.put(SETTINGS, json={}, headers=analyst), 403)
    other = keys.headers(["admin"], keys.project("other"))
    assert_problem(client.get(SETTINGS, headers=other), 404)


def test_the_platform_template_adds_its_pipeline_once(
    client: TestClient, admin: dict[str, str], shop: str
) -> None:
    resp = client.post(f"{BASE}/templates/platform", headers=admin)
    assert resp.status_code == 201, resp.text
    names = [e["name"] for e in resp.json()["events"]]
    assert names == [
        "cart_add",
        "checkout_start",
        "holdout",
        "intervention",
        "prediction",
        "purchase",
    ]
    intervention = next(e for e in resp.json()["events"] if e["name"] == "intervention")
    assert {f["name"] for f in intervention["fields"]} == {
        "intervention_id",
        "channel",
        "action",
        "campaign",
        "status",
    }
    assert_problem(client.post(f"{BASE}/templates/platform", headers=admin), 409)
    assert_problem(client.post(f"{BASE}/templates/nothing", headers=admin), 422, field="template")


YAML = """
project: {id: shop, name: Shop}
templates: [platform]
analytics:
  abandon_after: 45m
  outcome_horizon: 3d
"""


def test_yaml_applies_templates_and_analytics(app: Any) -> None:
    result = apply_yaml(app, YAML)
    assert result.deployed_version == 1
    assert deployed(app)["abandon_after"] == "45m"
    snapshot = app.state.dataintel.port(CONFIGS).get("shop").snapshot
    assert snapshot.pipeline("platform") == PLATFORM_PIPELINE
    again = apply_yaml(app, YAML)
    assert again.changes == []
    assert again.deployed_version is None


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (YAML.replace("45m", "forever"), "analytics.abandon_after"),
        (YAML + "pipelines: [{id: platform, name: P}]\n", "pipelines"),
        (YAML.replace("[platform]", "[shopify]"), "templates[0]"),
    ],
)
def test_yaml_errors_name_their_place(text: str, where: str) -> None:
    from dataintel.errors import InvalidInput

    with pytest.raises(InvalidInput, match=where.replace("[", r"\[").replace("]", r"\]")):
        parse(text)


def test_the_demo_project_has_the_platform_template() -> None:
    snapshot = demo().snapshot()
    assert snapshot.pipeline("platform") == PLATFORM_PIPELINE
    assert snapshot.pipeline("web") is not None
    # The demo's shoppers buy within minutes: it judges carts faster than the defaults.
    assert (snapshot.analytics.abandon_after, snapshot.analytics.outcome_horizon) == ("2m", "1d")
