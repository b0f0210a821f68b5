"""The report routes on SQLite and PostgreSQL metadata: filters, cursor, one report; tenant
isolation (a project never sees another's reports or counts, even with the same event ids);
permissions; bad input is a 4xx problem naming the field."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from dataintel.settings import Settings
from tests.conftest import Keys, apply_yaml, assert_problem
from tests.reconciliation.conftest import OTHER, SHOP, Shop, platform_events

BOTH = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
TODAY = datetime.now(UTC).date()


def small_events(n: int, price: float) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "event_id": f"r{i}",  # the same ids in both projects
            "event": "purchase" if i % 3 == 0 else "view",
            "timestamp": now,
            "user_id": f"u{i % 4}",
            "properties": {"product_id": f"sku{i}", "price": price},
        }
        for i in range(n)
    ]


@pytest.fixture
def shops(app: Any, client: TestClient, keys: Keys) -> Shop:
    keys.project("shop")
    keys.project("other")
    apply_yaml(app, SHOP)
    apply_yaml(app, OTHER)
    found = Shop(client, app, keys, small_events(30, 2.5), platform_events())
    found.send("shop", "web", found.web)
    theirs = [
        {**e, "properties": {"revenue": 100.0} if e["event"] == "purchase" else {}}
        for e in small_events(5, 0)
    ]
    found.send("other", "web", theirs)
    for run_id, project in ((1, "shop"), (2, "shop"), (3, "other")):
        assert {v["status"] for v in found.reconcile(run_id, project).values()} == {"ok"}
    return found


def get(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    resp = client.get(path, headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


@BOTH
def test_reports_list_filter_page_and_stay_in_their_project(shops: Shop) -> None:
    client, keys = shops.client, shops.keys
    shop = keys.headers([Role.ANALYST], "shop")
    other = keys.headers([Role.ANALYST], "other")
    mine = get(client, "/v1/reconciliation/reports", shop)
    assert mine["next_before"] is None
    assert [r["run_id"] for r in mine["reports"]] == [2, 2, 1, 1]  # newest first, 2 days each
    assert {r["project_id"] for r in mine["reports"]} == {"shop"}
    today = next(r for r in mine["reports"] if r["day"] == TODAY.isoformat())
    assert today["counts"]["event_log"]["events"] == 30
    assert today["counts"]["analytics"] == {"events": 30, "purchases": 10, "revenue": 25.0}

    theirs = get(client, "/v1/reconciliation/reports", other)
    assert {r["project_id"] for r in theirs["reports"]} == {"other"}
    counted = next(r for r in theirs["reports"] if r["day"] == TODAY.isoformat())
    assert counted["counts"]["analytics"] == {"events": 5, "purchases": 2, "revenue": 200.0}
    assert counted["counts"]["event_log"]["events"] == 5
    # Another project's report is not found, whatever its id.
    assert_problem(client.get(f"/v1/reconciliation/reports/{today['id']}", headers=other), 404)
    assert get(client, f"/v1/reconciliation/reports/{today['id']}", shop) == today

    # Filters and the cursor.
    days = get(client, "/v1/reconciliation/reports", shop, **{"from": TODAY, "to": TODAY})
    assert [r["day"] for r in days["reports"]] == [TODAY.isoformat()] * 2
    assert get(client, "/v1/reconciliation/reports", shop, status="repaired")["reports"] == []
    assert len(get(client, "/v1/reconciliation/reports", shop, status="ok")["reports"]) == 4
    seen, before = [], None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"before": before} if before else {})
        page = get(client, "/v1/reconciliation/reports", shop, **params)
        seen += [r["id"] for r in page["reports"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == [r["id"] for r in mine["reports"]]

    # Not even the other project's traffic volume shows: more of its events leave this
    # project's counts as they were.
    more = [
        {**e, "event_id": f"more{i}", "properties": {}} for i, e in enumerate(small_events(40, 0))
    ]
    shops.send("other", "web", [{**e, "event": "view"} for e in more])
    again = shops.reconcile(4, "shop")[TODAY.isoformat()]["report_id"]
    assert get(client, f"/v1/reconciliation/reports/{again}", shop)["counts"] == today["counts"]


@BOTH
def test_permissions_and_bad_input(client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    ingest = keys.headers([Role.INGEST], "shop")
    analyst = keys.headers([Role.ANALYST], "shop")
    developer = keys.headers([Role.DEVELOPER], "shop")
    assert_problem(client.get("/v1/reconciliation/reports", headers=ingest), 403)
    assert_problem(client.post("/v1/reconciliation/run", headers=analyst), 403)
    url = "/v1/reconciliation/reports"
    for params, field in (
        ({"from": "2026-02-02", "to": "2026-02-01"}, "from"),
        ({"from": "1969-12-31"}, "from"),
        ({"to": "2300-01-01"}, "to"),
        ({"status": "maybe"}, "status"),
        ({"limit": 0}, "limit"),
        ({"from": "0"}, "from"),
        ({"limit": 501}, "limit"),
        ({"before": 2**31}, "before"),
    ):
        assert_problem(client.get(url, headers=analyst, params=params), 422, field=field)
    assert_problem(client.get(f"{url}/0", headers=analyst), 422, field="report_id")
    assert_problem(client.get(f"{url}/{2**40}", headers=analyst), 422, field="report_id")
    assert_problem(client.get(f"{url}/7", headers=analyst), 404)
    run = "/v1/reconciliation/run"
    future = (TODAY + timedelta(days=1)).isoformat()
    many = [(TODAY - timedelta(days=i)).isoformat() for i in range(32)]
    bad = ({"days": [future]}, {"days": many}, {"days": []}, {"days": [0]}, {"when": "now"})
    for body in bad:
        assert_problem(client.post(run, headers=developer, json=body), 422)


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    found: Settings = make_settings(scheduler_poll_seconds=0.05)
    return found


def test_a_run_asked_for_runs_on_the_scheduler_and_writes_its_reports(shops: Shop) -> None:
    client, keys = shops.client, shops.keys
    developer = keys.headers([Role.DEVELOPER], "shop")
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    body = {"days": [TODAY.isoformat(), yesterday, TODAY.isoformat()]}
    queued = client.post("/v1/reconciliation/run", headers=developer, json=body)
    assert queued.status_code == 202, queued.text
    accepted = queued.json()
    assert accepted["days"] == [yesterday, TODAY.isoformat()]
    assert queued.headers["location"] == f"/v1/jobs/runs/{accepted['run_id']}"
    deadline = time.monotonic() + 30
    while (run := client.get(queued.headers["location"], headers=developer).json())[
        "status"
    ] not in ("finished", "failed"):
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
    assert run["status"] == "finished", run
    assert run["manual"] is True
    assert set(run["outcome"]) == {yesterday, TODAY.isoformat()}
    analyst = keys.headers([Role.ANALYST], "shop")
    listed = get(client, "/v1/reconciliation/reports", analyst)["reports"]
    mine = [r for r in listed if r["run_id"] == accepted["run_id"]]
    assert sorted(r["id"] for r in mine) == sorted(d["report_id"] for d in run["outcome"].values())
    assert next(r for r in mine if r["day"] == TODAY.isoformat())["counts"]["analytics"] == {
        "events": 30,
        "purchases": 10,
        "revenue": 25.0,
    }
    admin = keys.headers([Role.ADMIN], "shop")
    trail = get(client, "/v1/audit", admin, action="run_now")["entries"]
    assert [e["detail"]["run_id"] for e in trail] == [accepted["run_id"]]
    # Another project's key cannot read the run.
    other = keys.headers([Role.ADMIN], "other")
    assert_problem(client.get(queued.headers["location"], headers=other), 404)
