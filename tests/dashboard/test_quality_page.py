"""The data-quality page in a real headless Chromium: a developer (config:read, no analytics)
sees only it; its open alerts, score, failing rules and per-pipeline/feature/event tables are
the API's numbers; the developer acknowledges an alert from the page (the API then says so),
an analyst (no config:write) sees the alerts without the button; a project without rules
shows how to define them."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from dataintel.auth.permissions import Role
from tests.conftest import Keys
from tests.dashboard.conftest import screenshot
from tests.dashboard.test_dashboard import sign_in
from tests.dashboard.test_gdpr_page import nav
from tests.quality.conftest import deploy_shop, now, run_job
from tests.quality.test_status import _events


@pytest.fixture
def http(live: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live, timeout=60) as c:
        yield c


def _send(http: httpx.Client, admin: dict[str, str], events: list[dict[str, Any]]) -> None:
    valid = [e for e in events if isinstance(e["properties"]["price"], float)]
    invalid = [e for e in events if e not in valid]
    for batch, wait in ((valid, "?wait=processed"), (invalid, "")):
        resp = http.post(f"/ingest/shop/web/batch{wait}", json=batch, headers=admin)
        assert resp.status_code == 200, resp.text


def test_the_quality_page_shows_the_apis_scores(
    live: str, page: Any, http: httpx.Client, app: Any, keys: Keys
) -> None:
    keys.project("shop")
    deploy_shop(app)
    admin = {"Authorization": f"Bearer {keys.mint([Role.ADMIN], 'shop')}"}
    t0 = now()
    _send(http, admin, _events(t0))
    with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
        pool.submit(run_job, app, "shop", t0 + timedelta(minutes=1)).result()

    key = keys.mint([Role.DEVELOPER], "shop")
    response = sign_in(page, live, key, "/v1/quality/status")
    assert nav(page) == ["Data quality"]
    assert page.locator("main").get_attribute("data-page") == "quality"
    api = http.get(response.url, headers={"Authorization": f"Bearer {key}"}).json()
    overall = api["overall"]
    assert overall["score"] is not None
    tile = page.locator("[data-testid=tile-score] .value")
    assert float(tile.get_attribute("data-value")) == pytest.approx(overall["score"])
    failing = page.locator("[data-testid=tile-failing] .value").get_attribute("data-value")
    assert failing == str(len(overall["failing_rules"])) == "2"
    for scope in ("pipelines", "features", "events"):
        rows = page.locator(f"[data-testid=table-quality-{scope}] tbody tr")
        assert rows.count() == len(api[scope])
        for i, item in enumerate(api[scope]):
            cells = rows.nth(i).locator("td")
            assert cells.nth(0).get_attribute("data-value") == item["name"]
            shown = cells.nth(1).get_attribute("data-value")
            assert shown == ("" if item["score"] is None else str(item["score"])) or float(
                shown
            ) == pytest.approx(item["score"])
            assert cells.nth(3).get_attribute("data-value") == ", ".join(item["failing_rules"])
    recent = page.locator("[data-testid=table-quality-failing] tbody tr")
    assert recent.count() >= 2
    text = page.locator("[data-testid=table-quality-failing]").inner_text()
    assert "brand_missing" in text
    assert "price_range" in text
    alerts = page.locator("[data-testid=table-quality-alerts] tbody tr")
    assert alerts.count() == 2  # the two failing rules' alerts
    listed = http.get(
        "/v1/quality/alerts?status=open", headers={"Authorization": f"Bearer {key}"}
    ).json()["alerts"]
    shown = {alerts.nth(i).get_attribute("data-alert-id") for i in range(alerts.count())}
    assert shown == {str(a["id"]) for a in listed}
    first = listed[0]["id"]
    page.get_by_test_id(f"ack-{first}").click()
    page.locator(f"[data-alert-id='{first}'] td[data-value=acknowledged]").wait_for()
    assert "Acknowledged" in page.get_by_test_id("alert-status").inner_text()
    one = http.get(f"/v1/quality/alerts/{first}", headers={"Authorization": f"Bearer {key}"})
    assert one.json()["status"] == "acknowledged"
    assert one.json()["acknowledged_by"] is not None
    screenshot(page, "quality")
    assert page.errors == []


def test_an_analyst_sees_the_alerts_without_acknowledging(
    live: str, page: Any, http: httpx.Client, app: Any, keys: Keys
) -> None:
    keys.project("shop")
    deploy_shop(app)
    admin = {"Authorization": f"Bearer {keys.mint([Role.ADMIN], 'shop')}"}
    t0 = now()
    _send(http, admin, _events(t0))
    with ThreadPoolExecutor(1) as pool:
        pool.submit(run_job, app, "shop", t0 + timedelta(minutes=1)).result()
    sign_in(page, live, keys.mint([Role.ANALYST], "shop"), "/v1/analytics/overview")
    page.goto(f"{live}/dashboard/#/quality")
    alerts = page.locator("[data-testid=table-quality-alerts] tbody tr")
    alerts.first.wait_for()
    assert alerts.count() == 2
    assert page.locator("[data-testid^=ack-]").count() == 0
    assert page.errors == []


def test_a_project_without_rules_says_how_to_define_them(live: str, page: Any, keys: Keys) -> None:
    keys.project("shop")
    sign_in(page, live, keys.mint([Role.DEVELOPER], "shop"), "/v1/quality/status")
    empty = page.get_by_test_id("empty")
    assert empty.is_visible()
    assert "/api/v1/projects/{project}/quality" in empty.inner_text()
    assert page.errors == []
