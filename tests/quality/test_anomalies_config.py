"""The monitoring section of the config: GET/PUT as a draft, validated (422 naming the
field), config:write to change it, shown in the pending diff, deployed with the rest."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from dataintel.config.deployments.active import CONFIGS
from tests.conftest import Keys, assert_problem

URL = "/api/v1/projects/shop/monitoring"


def test_monitoring_settings_are_draft_config(app: Any, client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    dev, analyst = keys.headers(["developer"], "shop"), keys.headers(["analyst"], "shop")
    default = client.get(URL, headers=analyst).json()
    assert default["anomalies"]["threshold"] == 3.5
    assert default["anomalies"]["seasonality"] == "hour_of_week"
    assert default["drift"]["psi_critical"] == 0.25
    body = {
        "webhook_url": "https://hooks.example.com/q",
        "webhook_secret": "s" * 20,
        "anomalies": {"bucket_hours": 24, "seasonality": "none", "direction": "drop"},
    }
    assert_problem(client.put(URL, json=body, headers=analyst), 403)
    put = client.put(URL, json=body, headers=dev)
    assert put.status_code == 200, put.text
    assert put.json()["anomalies"]["warmup"] == 14  # omitted: the default
    pending = client.get("/api/v1/projects/shop/deployments/pending", headers=dev).json()
    assert any(c["kind"] == "monitoring" for c in pending["changes"]), pending
    assert client.post("/api/v1/projects/shop/deployments", headers=dev).status_code == 201
    app.state.dataintel.port(CONFIGS).invalidate()
    deployed = app.state.dataintel.port(CONFIGS).get("shop").snapshot.monitoring
    assert deployed.anomalies.direction == "drop"
    assert deployed.webhook_url == "https://hooks.example.com/q"

    bad = [
        ({"anomalies": {"threshold": 0}}, "threshold"),
        ({"anomalies": {"bucket_hours": 5}}, "bucket_hours"),
        ({"anomalies": {"metrics": ["volume", "volume"]}}, "metrics"),
        ({"webhook_url": "ftp://x"}, "webhook_url"),
        ({"webhook_secret": "short"}, "webhook_secret"),
        ({"drift": {"bins": 1000}}, "bins"),
        ({"extra": 1}, "extra"),
    ]
    for payload, field in bad:
        assert_problem(client.put(URL, json=payload, headers=dev), 422, field=field)
