"""The GDPR page in a real headless Chromium, signed in as a compliance officer: a request
filed through the form reaches `finished` with every store's erased count; a store that
really fails (a report's file that cannot be deleted) shows its reason; the user-id filter;
no user id is ever printed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from dataintel.auth.permissions import Role
from dataintel.settings import Settings
from dataintel.storage.metadata.report_models import Report
from tests.conftest import Keys
from tests.dashboard import shop
from tests.dashboard.conftest import screenshot
from tests.dashboard.test_dashboard import sign_in

ADA, GRACE = "ada@example.org", "grace@example.org"  # two real shoppers of the shop's data
STORES = ["suppression", "event_log", "analytics", "online", "dead_letters", "reports"]


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    # Erasure starts 0.4 s after a request; a failed store fails the request at once.
    return make_settings(
        gdpr_suppression_refresh_seconds=0.2, gdpr_max_attempts=1, report_poll_seconds=0.05
    )


@pytest.fixture
def http(live: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live, timeout=60) as c:
        yield c


def nav(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#nav a").all_inner_texts()]


def file_request(page: Any, user_id: str, kind: str) -> str:
    """Files a request through the page's form; returns its id (from the POST's answer)."""
    page.locator("#gdpr-user").fill(user_id)  # two "User id" fields: this form's
    page.get_by_label("Type").select_option(kind)
    with page.expect_response(lambda r: "/v1/gdpr/forget/" in r.url) as info:
        page.get_by_role("button", name="File request").click()
    assert info.value.status == 202
    request_id: str = info.value.json()["request_id"]
    return request_id


def shown(page: Any, request_id: str, status: str) -> Any:
    """The request's card once the page shows it with ``status`` (it polls the API)."""
    card = page.locator(f"[data-testid=request][data-request-id='{request_id}']")
    page.locator(f"[data-request-id='{request_id}'][data-status={status}]").wait_for(timeout=15_000)
    return card


def store_rows(card: Any) -> dict[str, dict[str, str]]:
    return dict(
        card.locator("[data-testid=stores] tbody tr").evaluate_all(
            """rows => rows.map(r => [r.dataset.store, {
                status: r.dataset.status,
                attempts: r.cells[2].dataset.value,
                erased: r.cells[3].dataset.value,
                error: r.cells[5].dataset.value,
            }])"""
        )
    )


def events_report_file(http: httpx.Client, app: Any, analyst: dict[str, str]) -> Path:
    """A row-level report (every event) made through the API; returns its file."""
    body = {"kind": "events", "params": {}, "format": "csv"}
    created = http.post("/v1/reports/generate", json=body, headers=analyst)
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 15
    while http.get(f"/v1/reports/{created.json()['id']}", headers=analyst).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with app.state.dataintel.sessions() as session:
        report = session.scalars(select(Report).where(Report.id == created.json()["id"])).one()
        assert report.file_path
        return Path(report.file_path)


def test_a_compliance_officer_files_and_follows_requests(
    live: str, page: Any, http: httpx.Client, app: Any, keys: Keys, admin: dict[str, str]
) -> None:
    keys.project("shop")
    shop.open_shop(http, admin, "shop")
    names = {"u3": ADA, "u5": GRACE}
    events = [{**e, "user_id": names.get(e["user_id"], e["user_id"])} for e in shop.events()]
    shop.send(http, admin, "shop", events)
    officer = keys.mint([Role.COMPLIANCE], "shop")
    auth = {"Authorization": f"Bearer {officer}"}

    polled: list[str] = []
    page.on("request", lambda r: polled.append(r.url) if "/v1/gdpr/status/" in r.url else None)
    sign_in(page, live, officer, "/v1/gdpr/requests")
    assert nav(page) == ["GDPR"]  # no analytics pages: it may not read analytics
    assert page.locator("main").get_attribute("data-page") == "gdpr"
    assert page.get_by_test_id("empty").is_visible()

    # Suppress and delete: followed until finished, every store's row with its count.
    first = file_request(page, ADA, "SUPPRESS_WITH_DELETE")
    card = shown(page, first, "finished")
    assert page.locator("#gdpr-user").input_value() == ""  # the id left the screen
    assert any(url.split("?")[0].endswith(first) for url in polled)  # followed by its status
    rows = store_rows(card)
    assert list(rows) == STORES
    assert {r["status"] for r in rows.values()} == {"finished"}
    api = http.get(f"/v1/gdpr/status/{first}", headers=auth).json()
    assert {s["store"]: s["erased"] for s in api["stores"]} == {
        s: int(r["erased"]) for s, r in rows.items()
    }
    assert int(rows["event_log"]["erased"]) == sum(e["user_id"] == ADA for e in events) > 0
    assert int(rows["analytics"]["erased"]) > 0
    assert page.get_by_test_id("filed").inner_text().endswith("finished.")

    # A store that really fails: a report's file became a directory, which unlink refuses.
    path = events_report_file(http, app, keys.headers([Role.ANALYST], "shop"))
    path.unlink()
    path.mkdir()
    second = file_request(page, GRACE, "DELETE_ONLY")
    card = shown(page, second, "failed")
    rows = store_rows(card)
    assert list(rows) == STORES[1:]  # DELETE_ONLY: no suppression
    assert rows["reports"]["status"] == "failed"
    assert rows["reports"]["attempts"] == "1"
    assert rows["reports"]["error"].startswith("IsADirectoryError: ")
    assert "IsADirectoryError" in card.locator("tr[data-store=reports] td.reason").inner_text()
    assert card.get_by_test_id("request-error").inner_text().startswith("Failed: reports: ")
    assert {s: r["status"] for s, r in rows.items() if s != "reports"} == dict.fromkeys(
        STORES[1:-1], "finished"
    )
    assert int(rows["event_log"]["erased"]) == sum(e["user_id"] == GRACE for e in events) > 0
    screenshot(page, "gdpr")

    # The filter: by the exact user id, without it in the address bar.
    def listed(want: list[str]) -> list[str]:
        """The cards' request ids, once they are ``want`` (the page renders after its
        response arrives) or after 5 s."""
        page.wait_for_load_state("networkidle")
        deadline = time.monotonic() + 5
        while True:
            ids: list[str] = page.locator("[data-testid=request]").evaluate_all(
                "cards => cards.map(c => c.dataset.requestId)"
            )
            if ids == want or time.monotonic() > deadline:
                return ids
            page.wait_for_timeout(50)

    assert listed([second, first]) == [second, first]  # newest first
    filter_box = page.get_by_role("searchbox", name="User id")
    filter_box.fill(ADA)
    with page.expect_response(lambda r: "user_id=" in r.url):
        page.get_by_role("button", name="Filter").click()
    assert listed([first]) == [first]
    filter_box.fill("nobody@example.org")
    with page.expect_response(lambda r: "user_id=" in r.url):
        filter_box.press("Enter")
    assert page.get_by_test_id("empty").inner_text().startswith("No request for this user id")
    with page.expect_response(lambda r: "/v1/gdpr/requests" in r.url):
        page.get_by_role("button", name="Show all").click()
    assert listed([second, first]) == [second, first]

    # No subject's id anywhere on the page or in its address.
    assert "@example.org" not in page.locator("body").inner_text()
    assert "example.org" not in page.url
    assert page.errors == []


def test_the_navigation_offers_the_pages_a_credential_may_use(
    live: str, page: Any, keys: Keys
) -> None:
    keys.project("shop")
    sign_in(page, live, keys.mint([Role.ADMIN], "shop"), "/v1/analytics/overview")
    assert nav(page) == [
        "Overview",
        "Funnel",
        "Revenue",
        "Model performance",
        "Data quality",
        "GDPR",
    ]
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live, keys.mint([Role.ANALYST], "shop"), "/v1/analytics/overview")
    assert "GDPR" not in nav(page)
    page.goto(f"{live}/dashboard/#/gdpr")  # typed by hand: the first page it may see instead
    page.wait_for_load_state("networkidle")
    page.wait_for_selector("main[data-state=ready][data-page=overview]")
    assert page.locator("main h1").inner_text() == "Overview"
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key or JWT").fill(keys.mint([Role.INGEST], "shop"))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="none of the dashboard's pages").wait_for()
    assert page.errors == []
