"""The dashboard in a real headless Chromium: sign in, every page, numbers equal the API's."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from dataintel.auth.permissions import Role
from tests.conftest import Keys
from tests.dashboard import shop
from tests.dashboard.conftest import screenshot


@pytest.fixture
def http(live: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live, timeout=60) as c:
        yield c


def sign_in(page: Any, live: str, key: str, first_api: str) -> Any:
    """Open the dashboard, sign in with the keyboard; returns the first page's API response."""
    page.goto(f"{live}/dashboard/")
    field = page.get_by_label("API key or JWT")
    field.fill(key)
    with page.expect_response(lambda r: first_api in r.url) as info:
        field.press("Tab")  # keyboard only: Tab to the button, Enter to submit
        page.keyboard.press("Enter")
    page.wait_for_selector("main[data-state=ready]")
    return info.value


def test_the_overview_shows_the_apis_numbers(
    live: str, page: Any, http: httpx.Client, keys: Keys, admin: dict[str, str]
) -> None:
    keys.project("shop")
    shop.open_shop(http, admin, "shop")
    shop.send(http, admin, "shop", shop.events())
    key = keys.mint([Role.ANALYST], "shop")
    response = sign_in(page, live, key, "/v1/analytics/overview")
    assert page.locator("main").get_attribute("data-page") == "overview"

    # The API, asked independently with the page's own query, says the same numbers.
    api = http.get(response.url, headers={"Authorization": f"Bearer {key}"}).json()
    assert api["totals"]["events"]["value"] > 0
    for metric, numbers in api["totals"].items():
        shown = page.locator(f"[data-testid=tile-{metric}] .value").get_attribute("data-value")
        expected = "" if numbers["value"] is None else numbers["value"]
        assert shown == str(expected) or float(shown) == pytest.approx(expected), metric
    rows = page.locator("[data-testid=table-overview-series] tbody tr")
    assert rows.count() == len(api["series"])
    for name in ("activity", "carts", "revenue"):
        page.wait_for_selector(f"[data-testid=chart-{name}][data-rendered=true]")

    # The table's CSV holds the API's series.
    with page.expect_download() as download:
        page.get_by_test_id("csv-overview-series").click()
    lines = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["Events"] for r in lines] == [
        str(p["metrics"]["events"]["value"]) for p in api["series"]
    ]
    screenshot(page, "overview")
    assert page.errors == []


def open_page(page: Any, name: str, api: str) -> Any:
    """Click a page in the navigation; returns the API response the page read."""
    with page.expect_response(lambda r: api in r.url) as info:
        page.get_by_role("link", name=name).click()
    page.wait_for_selector("main[data-state=ready][data-page] >> nth=0")
    page.wait_for_function("document.querySelector('main').dataset.state === 'ready'")
    return info.value


def cells(page: Any, table: str, column: int) -> list[str]:
    return page.locator(
        f"[data-testid=table-{table}] tbody tr td:nth-child({column})"
    ).evaluate_all("cells => cells.map(c => c.dataset.value)")


def test_every_page_shows_the_apis_numbers(
    live: str, page: Any, http: httpx.Client, keys: Keys, admin: dict[str, str]
) -> None:
    keys.project("shop")
    shop.open_shop(http, admin, "shop")
    shop.send(http, admin, "shop", shop.events())
    key = keys.mint([Role.ANALYST], "shop")
    auth = {"Authorization": f"Bearer {key}"}
    sign_in(page, live, key, "/v1/analytics/overview")

    funnel = http.get(open_page(page, "Funnel", "/v1/analytics/conversion").url, headers=auth)
    steps = funnel.json()["steps"]
    assert steps[0]["entered"] > 0
    assert cells(page, "funnel-steps", 2) == [str(s["entered"]) for s in steps]
    page.wait_for_selector("[data-testid=chart-funnel][data-rendered=true]")
    screenshot(page, "funnel")

    revenue = http.get(open_page(page, "Revenue", "/v1/analytics/revenue").url, headers=auth)
    body = revenue.json()
    assert body["revenue"] > 0
    shown = page.locator("[data-testid=tile-revenue] .value").get_attribute("data-value")
    assert float(shown) == pytest.approx(body["revenue"])
    assert cells(page, "attribution-channel", 1) == [r["value"] for r in body["by_channel"]]
    uplift = page.get_by_test_id("uplift").get_attribute("data-value")
    expected = body["incremental"]["uplift"]["recovery_rate_difference"]["estimate"]
    assert uplift == ("" if expected is None else str(expected)) or float(uplift) == expected
    screenshot(page, "revenue")

    model = http.get(
        open_page(page, "Model performance", "/v1/analytics/performance").url, headers=auth
    )
    models = [m for m in model.json()["models"] if m["predictions"]]
    assert models, model.json()
    assert [float(v) for v in cells(page, "models", 5)] == pytest.approx(
        [m["roc_auc"] for m in models]
    )
    for name in ("roc", "calibration"):
        page.wait_for_selector(f"[data-testid=chart-{name}][data-rendered=true]")
    screenshot(page, "model")
    assert page.errors == []


def test_an_empty_project_says_what_to_do_next(
    live: str, page: Any, http: httpx.Client, keys: Keys, admin: dict[str, str]
) -> None:
    keys.project("fresh")
    key = keys.mint([Role.ANALYST], "fresh")
    sign_in(page, live, key, "/v1/analytics/overview")
    empty = page.get_by_test_id("empty")
    assert empty.is_visible()
    assert "POST /v1/events" in empty.inner_text()
    screenshot(page, "overview-empty")
    for name, api in (
        ("Funnel", "/v1/analytics/conversion"),
        ("Revenue", "/v1/analytics/revenue"),
        ("Model performance", "/v1/analytics/performance"),
    ):
        assert open_page(page, name, api).status == 200
        assert page.get_by_test_id("empty").is_visible(), name
        assert page.get_by_test_id("error").count() == 0
    assert page.errors == []


def test_sign_in_with_a_jwt_shows_its_projects_pages(
    live: str, page: Any, http: httpx.Client, keys: Keys, admin: dict[str, str]
) -> None:
    keys.project("shop")
    shop.open_shop(http, admin, "shop")
    shop.send(http, admin, "shop", shop.events())
    now = int(time.time())
    claims = {
        "sub": "ana",
        "iss": "dataintel",
        "aud": "dataintel",
        "iat": now,
        "exp": now + 300,
        "roles": ["analyst"],
        "projects": ["shop"],
    }
    token = jwt.encode(claims, "test-secret-" + "x" * 32, algorithm="HS256")  # conftest's
    response = sign_in(page, live, token, "/v1/analytics/overview")
    assert response.status == 200
    assert page.locator("#project").input_value() == "shop"
    shown = page.locator("[data-testid=tile-events] .value").get_attribute("data-value")
    api = http.get(response.url, headers={"Authorization": f"Bearer {token}"}).json()
    assert int(shown) == api["totals"]["events"]["value"] > 0


def test_a_wrong_key_is_refused_on_the_sign_in_page(live: str, page: Any) -> None:
    page.goto(f"{live}/dashboard/")
    page.get_by_label("API key or JWT").fill("di_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="not accepted").wait_for()


def test_the_shell_is_served_with_a_strict_policy(http: httpx.Client) -> None:
    resp = http.get("/dashboard/")
    assert resp.status_code == 200
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert http.get("/dashboard", follow_redirects=False).status_code == 308
    assert http.get("/dashboard/static/vendor/chart.umd.min.js").status_code == 200
