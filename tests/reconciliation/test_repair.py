"""Acceptance, on DuckDB and on chDB: damage the stores on purpose (rows deleted from the
analytics store behind its back, an entity's state dropped from the online store) and the
next reconciliation run finds exactly that, repairs it by replay from the log, and a run
after it finds and repairs nothing. Counts are checked against the events sent (pandas)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from dataintel.api.state import ONLINE
from dataintel.features.serving.service import SERVER
from dataintel.settings import Settings
from dataintel.storage.online.port import EntityRef
from tests.gdpr.conftest import busiest_users
from tests.reconciliation.conftest import Shop, delete_rows


@pytest.fixture(params=["duckdb", "chdb"])
def settings(request: pytest.FixtureRequest, make_settings: Any, tmp_path: Any) -> Settings:
    where = tmp_path / "engine"
    url = f"duckdb:///{where}/a.duckdb" if request.param == "duckdb" else f"chdb:///{where}/ch"
    found: Settings = make_settings(analytics_url=url)
    return found


def reference(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The day's numbers computed from the events sent, independently of the service."""
    frame = pd.DataFrame(
        {
            "event": [e["event"] for e in events],
            "cart_id": [e.get("cart_id") for e in events],
            "price": [e["properties"].get("price") for e in events],
        }
    )
    purchases = frame[frame.event == "purchase"]
    carts = set(frame[frame.event.isin(["cart", "cart_add"])].cart_id.dropna())
    predicted = set(frame[frame.event == "prediction"].cart_id.dropna())

    def orphans(event: str, having: set[str]) -> int:
        rows = frame[frame.event == event]
        return int((~rows.cart_id.isin(having) | rows.cart_id.isna()).sum())

    return {
        "totals": {
            "events": len(frame),
            "purchases": len(purchases),
            "revenue": round(float(purchases.price.sum()), 6),
        },
        "cross_checks": {
            "predictions_without_cart": orphans("prediction", carts),
            "interventions_without_prediction": orphans("intervention", predicted),
            "purchases_without_cart": orphans("purchase", carts),
        },
    }


def reports_of(shop: Shop, outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's reports, read through the API (an analyst of the shop)."""
    analyst = shop.keys.headers(["analyst"], "shop")
    found = []
    for day in outcome.values():
        resp = shop.client.get(f"/v1/reconciliation/reports/{day['report_id']}", headers=analyst)
        assert resp.status_code == 200, resp.text
        found.append(resp.json())
    return found


def summed(reports: list[dict[str, Any]], store: str) -> dict[str, Any]:
    """A store's totals over the days checked (the events arrived today; at midnight, some
    may have arrived yesterday)."""
    keys = ("events", "purchases", "revenue")
    totals = {k: sum(r["counts"][store][k] for r in reports) for k in keys}
    totals["revenue"] = round(totals["revenue"], 6)
    return totals


def findings(reports: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for report in reports:
        for d in report["discrepancies"]:
            found.setdefault(d["kind"], []).extend(d["ids"])
    return {kind: sorted(ids) for kind, ids in found.items()}


def served_views(shop: Shop, user: str) -> Any:
    server = shop.app.state.dataintel.port(SERVER)
    _, vectors = shop.client.portal.call(server.entities, "shop", "user_id", [user], None)  # type: ignore[union-attr]
    return vectors[0]["values"]["views_lifetime"]


def test_damaged_stores_are_found_and_repaired_exactly_once(shop: Shop) -> None:
    expected = reference(shop.events)
    first = reports_of(shop, shop.reconcile(1))
    assert [r["status"] for r in first] == ["ok"] * len(first)
    assert findings(first) == {}
    assert summed(first, "event_log") == expected["totals"]
    assert summed(first, "analytics") == expected["totals"]
    cross = [r["counts"]["cross_checks"] for r in first]
    assert {k: sum(c[k] for c in cross) for k in cross[0]} == expected["cross_checks"]
    assert expected["cross_checks"]["predictions_without_cart"] == 1  # the data has orphans
    assert expected["cross_checks"]["interventions_without_prediction"] == 1

    # Damage: seven events (two purchases among them) vanish from the analytics store; the
    # busiest user's state vanishes from the online store.
    purchases = [e["event_id"] for e in shop.web if e["event"] == "purchase"][:2]
    views = [e["event_id"] for e in shop.web if e["event"] == "view"][100:105]
    lost = sorted(purchases + views)
    delete_rows(shop.analytics, "shop", lost)
    user = busiest_users(shop.web, 1)[0]
    user_views = sum(1 for e in shop.web if e["user_id"] == user and e["event"] == "view")
    assert served_views(shop, user) == user_views
    online = shop.app.state.dataintel.port(ONLINE)
    assert online.delete_entities([EntityRef("shop", "user_id", user)]) == 1
    assert served_views(shop, user) == 0  # the state is gone

    second = reports_of(shop, shop.reconcile(2))
    assert findings(second) == {"analytics_missing_events": lost, "online_missing_entities": [user]}
    assert "repaired" in [r["status"] for r in second]
    assert {r["status"] for r in second} <= {"ok", "repaired"}
    damaged = summed(second, "analytics")
    assert damaged["events"] == expected["totals"]["events"] - len(lost)
    assert summed(second, "analytics_after_repair") == expected["totals"]
    repaired = [r["repairs"] for r in second if r["repairs"]]
    assert sum(r["analytics_events"]["restored"] for r in repaired) == len(lost)
    assert [r["online_entities"] for r in repaired] == [{"user_id": [user]}]
    assert served_views(shop, user) == user_views  # recomputed from the analytics store

    third = reports_of(shop, shop.reconcile(3))
    assert findings(third) == {}
    assert [r["status"] for r in third] == ["ok"] * len(third)
    assert [r["repairs"] for r in third] == [{}] * len(third)
    assert summed(third, "analytics") == expected["totals"]  # nothing counted twice
    rows = shop.analytics.sql("SELECT count(*) AS n FROM events WHERE project_id = 'shop'")
    assert rows.column("n").to_pylist() == [len(shop.events)]
