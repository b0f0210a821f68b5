"""The abandonment rate on DuckDB and chDB, against a brute-force reading of the analytics
plane's definition (a cart is abandoned at its first cart event followed by abandon_after
without a cart event or a purchase; its outcome is that moment or its first purchase
before it): steady hours are quiet, a burst of abandoned carts is an anomaly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.api.state import ANALYTICS
from dataintel.config.deployments.active import CONFIGS
from dataintel.quality.anomalies import AnomalyDetector
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.metadata.monitoring_models import MetricEvaluation
from tests.analytics.store_writer import write
from tests.conftest import Keys, apply_yaml

HOUR, IDLE = timedelta(hours=1), timedelta(minutes=30)
START = datetime(2026, 5, 1, tzinfo=UTC)
YAML = """
project: {id: shop, name: Shop}
pipelines: [{id: web, name: Web, events: [{name: cart_add}, {name: purchase}]}]
monitoring: {anomalies: {seasonality: none, warmup: 5, min_volume: 5, metrics: [abandonment_rate]}}
"""


def carts() -> list[dict[str, Any]]:
    """20 carts an hour, one every 2 minutes; 3 in 10 abandoned, the rest bought 5 minutes
    later; in hour 10, 9 in 10 abandoned."""
    rows = []
    for h in range(11):
        for c in range(20):
            at, cart = START + h * HOUR + c * timedelta(minutes=2), f"c{h}-{c}"
            rows.append({"event": "cart_add", "ts": at, "cart_id": cart, "user_id": cart})
            if c % 10 >= (9 if h == 10 else 3):
                ts = at + timedelta(minutes=5)
                rows.append({"event": "purchase", "ts": ts, "cart_id": cart, "user_id": cart})
    return rows


def reference(rows: list[dict[str, Any]], bucket: datetime, end: datetime) -> float:
    """Brute force: each cart's outcome (abandoned at, or bought at) from its events."""
    by_cart: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r["ts"]):
        if r["ts"] < end:
            by_cart.setdefault(r["cart_id"], []).append(r)
    outcomes = []
    for events in by_cart.values():
        abandoned_at = None
        for i, e in enumerate(events):
            nxt = events[i + 1]["ts"] if i + 1 < len(events) else None
            if e["event"] == "cart_add" and (nxt is None or nxt > e["ts"] + IDLE):
                abandoned_at = e["ts"] + IDLE
                break
        bought = [e["ts"] for e in events if e["event"] == "purchase"]
        bought = [t for t in bought if abandoned_at is None or t <= abandoned_at]
        if bought:
            outcomes.append((min(bought), 0))
        elif abandoned_at is not None and abandoned_at < end:
            outcomes.append((abandoned_at, 1))
    inside = [a for t, a in outcomes if bucket <= t < bucket + HOUR]
    return sum(inside) / len(inside)


@pytest.fixture(params=["duckdb", "chdb"])
def store(request: pytest.FixtureRequest, app: Any, tmp_path: Path) -> Iterator[AnalyticsStore]:
    if request.param == "duckdb":
        yield app.state.dataintel.port(ANALYTICS)
        return
    chdb = open_analytics(f"chdb:{tmp_path}/chdb")
    yield chdb
    chdb.close()


def test_a_burst_of_abandoned_carts_is_an_anomaly(
    app: Any, client: TestClient, keys: Keys, store: AnalyticsStore
) -> None:
    keys.project("shop")
    apply_yaml(app, YAML)
    rows = carts()
    write(store, rows, "shop")
    configs = app.state.dataintel.port(CONFIGS)
    configs.invalidate()
    sessions = app.state.dataintel.sessions
    detector = AnomalyDetector(sessions, store, lambda p: configs.get(p).snapshot)
    assert detector.run("shop", START + 10 * HOUR)["anomalies"] == []
    assert detector.run("shop", START + 11 * HOUR)["anomalies"] == ["abandonment_rate"]
    with sessions() as session:
        for k in (9, 10):
            bucket = START + k * HOUR
            found = session.get(MetricEvaluation, ("shop", "abandonment_rate", bucket))
            assert found is not None
            assert found.value == pytest.approx(reference(rows, bucket, bucket + HOUR))
        # hour 10 by hand: carts 0-8 and 10-14 abandoned within it, 9 and 19 bought
        assert found.value == pytest.approx(14 / 16)
