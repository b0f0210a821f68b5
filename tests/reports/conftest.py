"""Reports fixtures: a shop whose events span three UTC days, ingested through the API and
applied by the real embedded processor (DuckDB), and the report API as a client sees it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from dataintel.settings import Settings
from tests.conftest import Keys, apply_yaml

SHOP = """
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields: [{name: sku, type: string}, {name: price, type: number}]
      - name: purchase
        fields: [{name: revenue, type: number}]
      - name: page_view
        fields: [{name: url, type: string}]
"""
# Three whole UTC days before today (events must stay within the allowed lateness).
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAYS = [TODAY - timedelta(days=d) for d in (3, 2, 1)]
NAMES = ("cart_add", "purchase", "page_view")


def shop_events() -> list[dict[str, Any]]:
    """A deterministic, uneven mix: counts differ per day and name (zeros included)."""
    out = []
    for d, day in enumerate(DAYS):
        for i in range(40 + 17 * d):
            name = NAMES[(i * (d + 1)) % 3] if d != 1 else NAMES[i % 2]  # day 2: no page_view
            out.append(
                {
                    "event_id": f"d{d}-{i:04d}",
                    "event": name,
                    "timestamp": (day + timedelta(minutes=17 * i)).isoformat(),
                    "user_id": f"u{i % 7}",
                    "properties": {"sku": f"s{i}", "price": i + 0.25}
                    if name == "cart_add"
                    else {"revenue": float(i)}
                    if name == "purchase"
                    else {"url": f"/p/{i}"},
                }
            )
    return out


def expected_counts(events: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """Brute force: (UTC day, event name) → events."""
    return Counter(
        (datetime.fromisoformat(e["timestamp"]).astimezone(UTC).date().isoformat(), e["event"])
        for e in events
    )


@dataclass
class Reports:
    client: TestClient
    keys: Keys
    headers: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)

    def generate(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.client.post("/v1/reports/generate", json=body, headers=headers or self.headers)

    def wait(
        self, report_id: str, timeout_s: float = 30, headers: dict[str, str] | None = None
    ) -> Any:
        """Poll until the answer is no longer 202 (queued / running)."""
        deadline = time.monotonic() + timeout_s
        while True:
            resp = self.client.get(f"/v1/reports/{report_id}", headers=headers or self.headers)
            if resp.status_code != 202 or time.monotonic() > deadline:
                return resp
            time.sleep(0.05)

    def file(self, body: dict[str, Any]) -> Any:
        queued = self.generate(body)
        assert queued.status_code == 202, queued.text
        done = self.wait(queued.json()["id"])
        assert done.status_code == 200, done.text
        return done


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(report_poll_seconds=0.05)


@pytest.fixture
def reports(app: Any, client: TestClient, keys: Keys) -> Reports:
    keys.project("shop")
    apply_yaml(app, SHOP)
    events = shop_events()
    ingest = keys.headers([Role.INGEST], "shop")
    resp = client.post("/ingest/shop/web/batch?wait=processed", json=events, headers=ingest)
    assert resp.status_code == 200, resp.text
    assert resp.json()["processed"] is True
    return Reports(client, keys, keys.headers([Role.ANALYST], "shop"), events)
