"""The quality.rules job end to end on the embedded stack: events through ingest (some
rejected into dead letters), the job's run, the stored results, the scores per pipeline,
event and feature against the formula worked by hand, idempotence per slot, the trigger
route through the scheduler, and tenant isolation - on SQLite and PostgreSQL metadata."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.settings import Settings
from tests.conftest import Keys, assert_problem
from tests.quality.conftest import deploy_shop, now, run_job, send

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(scheduler_poll_seconds=0.05)


def _events(t0: Any) -> list[dict[str, Any]]:
    """10 accepted views (3 without a brand, 2 priced out of [1, 100]) and 2 rejected."""
    views = []
    for i in range(10):
        props: dict[str, Any] = {"price": 500.0 if i < 2 else 10.0 + i}
        if i >= 3:
            props["brand"] = "acme"
        ts = (t0 - timedelta(minutes=30 - i)).isoformat()
        views.append({"event": "view", "user_id": f"u{i}", "timestamp": ts, "properties": props})
    bad = {"event": "view", "user_id": "x", "properties": {"price": "cheap"}}  # wrong type
    return [*views, bad, bad]


def _expected_overall() -> float:
    completeness = 100 * 7 / 10
    validity = 100 * (8 / 10 + 10 / 12) / 2  # range, schema (weights 1)
    timeliness = 100.0
    return round((completeness + round(validity, 2) + timeliness) / 3, 2)


@BOTH
def test_rules_run_store_results_and_scores(app: Any, client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    deploy_shop(app)
    admin = keys.headers(["admin"], "shop")
    t0 = now()
    assert send(client, admin, "shop", _events(t0)) == 10

    outcome = run_job(app, "shop", t0 + timedelta(minutes=1))
    assert (outcome["pass"], outcome["fail"], outcome["error"]) == (2, 2, 0)
    assert outcome["failing"] == ["brand_missing", "price_range"]

    analyst = keys.headers(["analyst"], "shop")
    page = client.get("/v1/quality/results", headers=analyst).json()
    # the scheduler's own run of its current slot (before t0) may be listed too
    by_rule = {r["rule"]: r for r in page["results"] if r["run_id"] == 1001}
    assert set(by_rule) == {
        "brand_missing",
        "price_range",
        "fresh",
        "view_schema",
    }  # not the disabled user_missing
    brand = by_rule["brand_missing"]
    assert (brand["passing"], brand["total"], brand["status"]) == (7, 10, "fail")
    assert brand["observed"] == pytest.approx(30.0)
    assert brand["dimension"] == "completeness"
    schema = by_rule["view_schema"]
    assert (schema["passing"], schema["total"], schema["status"]) == (10, 12, "pass")
    assert schema["detail"] == {"accepted": 10, "rejected": 2}
    fresh = by_rule["fresh"]
    assert fresh["status"] == "pass"
    assert fresh["observed"] == pytest.approx(60 + 21 * 60)  # newest view: t0 - 21 min

    status = client.get("/v1/quality/status", headers=analyst).json()
    assert status["overall"]["score"] == _expected_overall()
    assert status["overall"]["failing_rules"] == ["brand_missing", "price_range"]
    (web,) = status["pipelines"]
    assert web["name"] == "web"
    assert web["score"] == _expected_overall()
    events = {e["name"]: e for e in status["events"]}
    assert events["purchase"]["score"] is None
    assert events["view"]["rules"] == 3
    (feature,) = status["features"]
    # price_sum reads view.price: the range rule on its field, and the schema rule (no column)
    assert feature["name"] == "price_sum"
    assert feature["score"] == round((100 * 8 / 10 + 100 * 10 / 12) / 2, 2)
    assert feature["failing_rules"] == ["price_range"]

    # the same slot again replaces its results; another slot adds a point to the series
    run_job(app, "shop", t0 + timedelta(minutes=1), run_id=1002)
    mine = client.get("/v1/quality/results", headers=analyst).json()["results"]
    assert sorted(r["run_id"] for r in mine if r["run_id"] in (1001, 1002)) == [1002] * 4
    run_job(app, "shop", t0 + timedelta(minutes=2), run_id=1003)
    first = client.get("/v1/quality/results?rule=fresh&limit=1", headers=analyst).json()
    (newest,) = first["results"]
    rest = client.get(
        f"/v1/quality/results?rule=fresh&cursor={first['next_cursor']}", headers=analyst
    ).json()["results"]
    full = client.get("/v1/quality/results?rule=fresh", headers=analyst).json()["results"]
    assert [newest, *rest] == [r for r in full if r["id"] <= newest["id"]]
    assert [r["run_id"] for r in full if r["run_id"] > 1000] == [1003, 1002]
    failing = client.get("/v1/quality/results?status=fail", headers=analyst).json()["results"]
    assert {r["rule"] for r in failing if r["run_id"] == 1003} == {"brand_missing", "price_range"}


@BOTH
def test_a_project_never_sees_another(app: Any, client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    keys.project("other")
    deploy_shop(app, "shop")
    deploy_shop(app, "other")
    admin = keys.headers(["admin"], "shop")
    t0 = now()
    send(client, admin, "shop", _events(t0))
    theirs = keys.headers(["admin"], "other")
    run_job(app, "shop", t0 + timedelta(minutes=1))
    outcome = run_job(app, "other", t0 + timedelta(minutes=1), run_id=1002)
    # the other project's rules read none of shop's events: no rows, and nothing fresh
    assert outcome["failing"] == ["fresh"]
    results = client.get("/v1/quality/results", headers=theirs).json()["results"]
    assert {r["total"] for r in results if r["rule"] != "fresh"} == {0}
    status = client.get("/v1/quality/status", headers=theirs).json()
    assert status["overall"]["failing_rules"] == ["fresh"]
    assert status["overall"]["score"] == 0.0  # only timeliness was judged
    mine = keys.headers(["admin"], "shop")
    assert client.get("/v1/quality/status?project_id=other", headers=mine).status_code == 404


def test_run_now_goes_through_the_scheduler(app: Any, client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    deploy_shop(app)
    admin = keys.headers(["admin"], "shop")
    send(client, admin, "shop", _events(now()))
    analyst = keys.headers(["analyst"], "shop")
    assert_problem(client.post("/v1/quality/validate", json={}, headers=analyst), 403)
    bad = client.post("/v1/quality/validate", json={"window_seconds": 10}, headers=admin)
    assert_problem(bad, 422, field="window_seconds")
    queued = client.post("/v1/quality/validate", json={"window_seconds": 7200}, headers=admin)
    assert queued.status_code == 202, queued.text
    url = queued.headers["location"]
    assert url == f"/v1/jobs/runs/{queued.json()['run_id']}"
    deadline = time.monotonic() + 20
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = client.get(url, headers=admin).json()
        if run["status"] in ("finished", "failed"):
            break
        time.sleep(0.05)
    assert run["status"] == "finished", run
    assert run["outcome"]["failing"] == ["brand_missing", "price_range"]
    results = client.get("/v1/quality/results", headers=admin).json()["results"]
    mine = [r for r in results if r["run_id"] == run["id"]]
    assert {r["window_end"] for r in mine} == {run["slot"]}
    assert len(mine) == 4  # the enabled rules
    trail = client.get("/v1/audit?action=trigger", headers=admin).json()["entries"]
    assert [e["detail"]["run_id"] for e in trail] == [run["id"]]
    assert trail[0]["detail"]["window_seconds"] == 7200


def test_reading_needs_config_read(app: Any, client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    ingest = keys.headers(["ingest"], "shop")
    for path in ("/v1/quality/status", "/v1/quality/results"):
        assert_problem(client.get(path, headers=ingest), 403)
    admin = keys.headers(["admin"], "shop")
    assert_problem(client.get("/v1/quality/results?cursor=abc", headers=admin), 422, field="cursor")
    assert_problem(client.get("/v1/quality/results?limit=0", headers=admin), 422, field="limit")
