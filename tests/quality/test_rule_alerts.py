"""A failing rule opens one alert (kind rule, the rule's severity) that stays one alert over
repeated runs, shows in the status as an open alert of its pipeline, event and feature, and
is resolved by the first run where the rule passes; a rule taken out of the config has its
alert resolved too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Keys
from tests.quality.conftest import deploy_shop, now, run_job, send
from tests.quality.test_status import _events


def alerts(client: TestClient, headers: dict[str, str], status: str) -> list[dict[str, Any]]:
    page = client.get(f"/v1/quality/alerts?kind=rule&status={status}", headers=headers)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["alerts"]
    return items


def test_a_failing_rule_opens_one_alert_until_it_passes(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    deploy_shop(app)
    admin = keys.headers(["admin"], "shop")
    t0 = now()
    assert send(client, admin, "shop", _events(t0)) == 10
    run_job(app, "shop", t0 + timedelta(minutes=1))
    run_job(app, "shop", t0 + timedelta(minutes=2))  # the same failures again

    opened = {a["fingerprint"]: a for a in alerts(client, admin, "open")}
    assert set(opened) == {"rule:brand_missing", "rule:price_range"}  # one each, not two
    brand = opened["rule:brand_missing"]
    assert (brand["kind"], brand["occurrences"]) == ("rule", 2)
    assert brand["detail"]["pass_fraction"] == 0.7
    status = client.get("/v1/quality/status", headers=admin).json()
    assert status["overall"]["open_alerts"] == 2
    view = next(e for e in status["events"] if e["name"] == "view")
    assert view["open_alerts"] == 2

    # 30 more views with a brand: 37 of 40 have one, over the rule's `mostly` of 0.9.
    branded = [
        {
            "event": "view",
            "user_id": f"b{i}",
            "timestamp": (t0 - timedelta(minutes=5)).isoformat(),
            "properties": {"price": 10.0, "brand": "acme"},
        }
        for i in range(30)
    ]
    assert send(client, admin, "shop", branded) == 30
    run_job(app, "shop", t0 + timedelta(minutes=3))
    resolved = {a["fingerprint"]: a for a in alerts(client, admin, "resolved")}
    assert "rule:brand_missing" in resolved
    assert resolved["rule:brand_missing"]["resolution"] == "cleared"
    after = client.get("/v1/quality/status", headers=admin).json()
    assert after["overall"]["open_alerts"] == len(alerts(client, admin, "open"))
