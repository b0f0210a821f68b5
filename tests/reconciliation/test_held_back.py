"""What a repair never puts back: events past the project's retention cutoffs (the retention
run deleted them from the analytics store before the log), and any event while a GDPR
erasure of the project is unsettled (its subject's events may still be in the log). Such a
run reports the discrepancy as not repaired and says why; the next run repairs once the
erasure has finished."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from dataintel.api.state import ONLINE
from dataintel.config.deployments.active import CONFIGS
from dataintel.model.retention import EventCutoffs
from dataintel.storage.metadata.gdpr_models import GdprRequest
from dataintel.storage.online.port import EntityRef
from tests.conftest import Keys, apply_yaml
from tests.reconciliation.conftest import SHOP, Shop, delete_rows, platform_events


def views(n: int, days_ago: float, prefix: str) -> list[dict[str, Any]]:
    when = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return [
        {
            "event_id": f"{prefix}{i}",
            "event": "view",
            "timestamp": when,
            "user_id": f"u{i}",
            "properties": {"product_id": "sku", "price": 1.0},
        }
        for i in range(n)
    ]


def summed(outcome: dict[str, Any], shop: Shop) -> list[dict[str, Any]]:
    analyst = shop.keys.headers(["analyst"], "shop")
    return [
        shop.client.get(f"/v1/reconciliation/reports/{d['report_id']}", headers=analyst).json()
        for d in outcome.values()
    ]


def test_expired_events_stay_deleted_and_an_unsettled_erasure_holds_repairs_back(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    apply_yaml(app, SHOP + "retention: {events_days: 2}\n")
    app.state.dataintel.port(CONFIGS).invalidate()
    shop = Shop(client, app, keys, views(6, 3, "old") + views(6, 0, "new"), platform_events())
    shop.send("shop", "web", shop.web)
    # The retention run deletes the old events from the analytics store (not yet the log).
    cutoff = datetime.now(UTC) - timedelta(days=2)
    assert shop.analytics.delete_events_before("shop", EventCutoffs(default=cutoff)) == 6
    reports = summed(shop.reconcile(1), shop)
    assert [r["status"] for r in reports] == ["ok", "ok"]
    assert sum(r["counts"]["event_log"]["expired"] for r in reports) == 6

    delete_rows(shop.analytics, "shop", ["new0", "new1"])
    online = app.state.dataintel.port(ONLINE)
    assert online.delete_entities([EntityRef("shop", "user_id", "u3")]) == 1
    with app.state.dataintel.sessions.begin() as session:
        request = GdprRequest(
            id="req-1",
            project_id="shop",
            kind="DELETE_ONLY",
            subject_hash="0" * 64,
            requested_by="tests",
        )
        session.add(request)
    held = [r for r in summed(shop.reconcile(2), shop) if r["discrepancies"]]
    assert len(held) == 1
    assert held[0]["status"] == "discrepant"
    assert [(d["kind"], d["ids"]) for d in held[0]["discrepancies"]] == [
        ("analytics_missing_events", ["new0", "new1"]),
        ("online_missing_entities", ["u3"]),
    ]
    assert "GDPR" in held[0]["repairs"]["held_back"]
    assert set(held[0]["repairs"]) == {"held_back"}  # neither store was touched
    assert online.read([EntityRef("shop", "user_id", "u3")], ["views@1"]) == [{}]

    with app.state.dataintel.sessions.begin() as session:
        session.get(GdprRequest, "req-1").status = "finished"  # type: ignore[union-attr]
    repaired = [r for r in summed(shop.reconcile(3), shop) if r["discrepancies"]]
    assert [r["status"] for r in repaired] == ["repaired"]
    assert repaired[0]["repairs"]["analytics_events"]["event_ids"] == ["new0", "new1"]
    assert repaired[0]["repairs"]["online_entities"] == {"user_id": ["u3"]}
    assert online.read([EntityRef("shop", "user_id", "u3")], ["views@1"])[0]["views@1"]
    rows = shop.analytics.sql("SELECT count(*) AS n FROM events WHERE project_id = 'shop'")
    assert rows.column("n").to_pylist() == [6]  # the six recent ones; the old stay deleted

    # An entity whose last event is older than the online store's TTL has expired: not
    # damage, and not brought back.
    assert online.delete_entities([EntityRef("shop", "user_id", "u4")]) == 1
    expired = summed(shop.reconcile(4, online_ttl=timedelta(seconds=0)), shop)
    assert [r["status"] for r in expired] == ["ok", "ok"]
    assert online.read([EntityRef("shop", "user_id", "u4")], ["views@1"]) == [{}]
    found = [
        r for r in summed(shop.reconcile(5, online_ttl=timedelta(days=1)), shop) if r["repairs"]
    ]
    assert [r["repairs"]["online_entities"] for r in found] == [{"user_id": ["u4"]}]
