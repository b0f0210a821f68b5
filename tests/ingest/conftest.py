"""Ingest fixtures: a deployed shop config and keys. The app's lifespan opens the real
embedded EventLog and AnalyticsStore and runs the processor; entries are read back with
``eventlog.read``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.api.state import EVENTLOG
from dataintel.auth.permissions import Role
from dataintel.ingest.resources import INGEST
from dataintel.storage import records
from dataintel.storage.eventlog.port import EventLog
from tests.conftest import Keys, apply_yaml

SHOP_V1 = """
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields:
          - {name: sku, type: string, required: true}
          - {name: price, type: number, required: true}
          - {name: quantity, type: number}
          - {name: gift, type: boolean}
          - {name: added_at, type: timestamp}
          - {name: meta, type: object}
      - name: page_view
        fields: [{name: url, type: string}]
      - {name: legacy, enabled: false}
  - id: strict
    name: Strict
    unknown_properties: reject
    events: [{name: cart_add, fields: [{name: sku, type: string}]}]
  - id: lenient
    name: Lenient
    unknown_properties: drop
    events: [{name: cart_add, fields: [{name: sku, type: string}]}]
"""


@dataclass
class Shop:
    """Project ``shop`` with SHOP_V1 deployed and an ingest key."""

    app: Any
    client: TestClient
    keys: Keys
    ingest: dict[str, str]

    @property
    def eventlog(self) -> EventLog:
        log: EventLog = self.app.state.dataintel.port(EVENTLOG)
        return log

    def entries(self) -> list[records.StoredEvent]:
        """Every event in the log, decoded (all partitions)."""
        log, portal = self.eventlog, self.client.portal
        assert portal is not None
        found: list[records.StoredEvent] = []
        for partition in range(log.partitions):
            for entry in portal.call(log.read, partition, 0, 1_000_000):
                found.append(records.decode(entry.value))
        return found

    def stored(self, event_id: str) -> list[records.StoredEvent]:
        return [e for e in self.entries() if e["event_id"] == event_id]

    def flush_stats(self) -> None:
        self.app.state.dataintel.port(INGEST).stats.flush()

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=body, headers=headers or self.ingest)


@pytest.fixture
def shop(app: Any, client: TestClient, keys: Keys) -> Shop:
    keys.project("shop")
    apply_yaml(app, SHOP_V1)
    return Shop(app, client, keys, keys.headers([Role.INGEST], "shop"))
