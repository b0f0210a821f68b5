"""Alerts and dashboards as code (deploy/): the alert rules pass ``promtool check rules`` and
their unit tests, and every metric the rules and the Grafana dashboard read is one the service
exports — so they cannot silently drift from the code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.conftest import Keys, apply_yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy/prometheus/alerts.yml"
RULE_TESTS = ROOT / "deploy/prometheus/alerts_test.yml"
DASHBOARD = ROOT / "deploy/grafana/dataintel.json"
SERIES = re.compile(r"\b(dataintel_[a-z_]+)")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool not found: run `make install-dev` (Debian's prometheus)")
        pytest.skip("promtool not found")
    return found


def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    promtool = _promtool()
    for args in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def _expressions() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    board = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in board["panels"] for t in p["targets"]]
    return exprs


def _family(series: str, families: set[str]) -> str:
    for suffix in SUFFIXES:
        if series.endswith(suffix) and series[: -len(suffix)] in families:
            return series[: -len(suffix)]
    return series


def test_every_metric_the_rules_and_dashboard_read_is_exported(client: TestClient) -> None:
    client.get("/health/live")  # at least one observed request
    text = client.get("/metrics").text
    families = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    used = {s for e in _expressions() for s in SERIES.findall(e)}
    assert used, "the rules and the dashboard read dataintel metrics"
    missing = {s for s in used if _family(s, families) not in families}
    assert missing == set(), f"read but not exported: {sorted(missing)}"


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["title"]
    assert board["uid"]
    assert board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["type"] == "timeseries"
        assert panel["targets"]
        assert all(t["expr"] for t in panel["targets"])
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():  # name: a family, or a family with its labels
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


def test_freshness_log_depth_and_online_hit_rate_are_measured(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    apply_yaml(
        app,
        """
project: {id: shop, name: Shop}
pipelines: [{id: web, name: Web, events: [{name: cart_add}]}]
features:
  - {name: carts, pipeline_id: web, source_event: cart_add, aggregation: COUNT, windows: [1h]}
""",
    )
    event = {
        "event_id": "e1",
        "event": "cart_add",
        "timestamp": datetime.now(UTC).isoformat(),
        "user_id": "ada",
    }
    ingest = keys.headers(["ingest"], "shop")
    sent = client.post("/ingest/shop/web/batch?wait=processed", json=[event], headers=ingest)
    assert sent.json()["processed"] is True
    service = keys.headers(["service"], "shop")
    for user in ("ada", "nobody"):
        assert client.get(f"/features/shop/users/{user}", headers=service).status_code == 200
    text = client.get("/metrics").text
    assert _sample(text, 'dataintel_online_lookups_total{found="true"}') == 1
    assert _sample(text, 'dataintel_online_lookups_total{found="false"}') == 1
    assert _sample(text, "dataintel_processor_freshness_seconds_count") >= 1
    assert _sample(text, "dataintel_eventlog_entries") >= 1
