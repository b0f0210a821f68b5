"""The dashboard on the demo's data (what `make start` loads): every page shows numbers, and
they are the API's. The overview's screenshot is the README's (docs/img)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import httpx
import pytest

from dataintel.auth.permissions import Role
from dataintel.config.declarative.demo_events import demo_events, send_demo_events
from dataintel.demo.http import Api
from dataintel.demo.neighbours import simulate
from tests.conftest import Keys, apply_yaml
from tests.dashboard.conftest import screenshot
from tests.dashboard.test_dashboard import cells, open_page, sign_in

PAGES = (
    ("Funnel", "/v1/analytics/conversion"),
    ("Revenue", "/v1/analytics/revenue"),
    ("Model performance", "/v1/analytics/performance"),
)


def test_every_page_shows_the_demos_numbers(live: str, page: Any, app: Any, keys: Keys) -> None:
    text = (resources.files("dataintel.config.declarative") / "demo-shop.yaml").read_text()
    project = apply_yaml(app, text).project_id
    admin = keys.mint([Role.ADMIN], project)
    now = datetime.now(UTC)
    events = demo_events(now)
    assert send_demo_events(live, admin, project, events) == len(events)
    done = simulate(Api(live, admin), events, project, now)
    assert done.predictions > 0

    key = keys.mint([Role.ANALYST], project)
    auth = {"Authorization": f"Bearer {key}"}
    response = sign_in(page, live, key, "/v1/analytics/overview")
    api = httpx.get(response.url, headers=auth, timeout=60).json()
    for metric in ("events", "active_users", "carts_created", "revenue", "interventions_sent"):
        assert api["totals"][metric]["value"] > 0, metric
        shown = page.locator(f"[data-testid=tile-{metric}] .value").get_attribute("data-value")
        assert float(shown) == pytest.approx(api["totals"][metric]["value"]), metric
    screenshot(page, "demo-overview")

    for name, route in PAGES:
        answer = httpx.get(open_page(page, name, route).url, headers=auth, timeout=60).json()
        assert page.get_by_test_id("empty").count() == 0, name
        assert page.get_by_test_id("error").count() == 0, name
        if name == "Funnel":
            expected = [str(s["entered"]) for s in answer["steps"]]
            assert cells(page, "funnel-steps", 2) == expected
            assert answer["steps"][0]["entered"] > 0
        elif name == "Revenue":
            assert answer["revenue"] > 0
            channels = [r["value"] for r in answer["by_channel"]]
            assert cells(page, "attribution-channel", 1) == channels
        else:
            models = [m for m in answer["models"] if m["predictions"]]
            assert {m["model_version"] for m in models} == {"demo-lr-1", "demo-lr-2"}
            shown = [float(v) for v in cells(page, "models", 5)]
            assert shown == pytest.approx([m["roc_auc"] for m in models])
        screenshot(page, f"demo-{name.split()[0].lower()}")
    assert page.errors == []
