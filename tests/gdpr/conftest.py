"""A shop on real REES46 events (times shifted to the last hours), a webhook receiver for
``gdpr.forget`` messages, and the raw byte scan of everything the service stores."""

from __future__ import annotations

import csv
import gzip
import http.server
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from tests.conftest import Keys, apply_yaml
from tests.ingest.test_real_data import _file

REES46 = "rees46-multicategory/2019-Oct_head_20191001T0000-0250Z.csv.gz"
EVENTS = 4000  # the first rows of the slice
# The REES46 shop's pipeline and its user and cart features (tests/reconciliation reuses them).
REES46_SHOP = """
pipelines:
  - id: web
    name: Web
    events:
      - name: view
        fields: &fields
          - {name: product_id, type: string, required: true}
          - {name: price, type: number, required: true}
          - {name: brand, type: string}
      - {name: cart, fields: *fields}
      - {name: purchase, fields: *fields}
features:
  - {name: views, pipeline_id: web, source_event: view, aggregation: COUNT, windows: [lifetime]}
  - {name: cart_value, pipeline_id: web, source_event: cart, entity_key: cart_id,
     aggregation: SUM, field: price, windows: [lifetime]}
"""
SHOP = (
    "project: {id: shop, name: Shop}"
    + REES46_SHOP
    + """  - {name: product_views, pipeline_id: web, source_event: view, entity_key: product_id,
     aggregation: COUNT, windows: [lifetime]}
"""
)


def rees46_events(limit: int = EVENTS) -> list[dict[str, Any]]:
    """Real events; a cart per session (REES46 has none), times moved to end a minute ago."""
    rows = []
    with gzip.open(_file(REES46), "rt", newline="") as f:
        for row in csv.DictReader(f):
            rows.append(row)
            if len(rows) == limit:
                break
    last = max(datetime.strptime(r["event_time"], "%Y-%m-%d %H:%M:%S UTC") for r in rows)
    shift = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1) - last
    events = []
    for i, row in enumerate(rows):
        when = datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC") + shift
        event: dict[str, Any] = {
            "event_id": f"r{i}",
            "event": row["event_type"],
            "timestamp": when.replace(tzinfo=UTC).isoformat(),
            "user_id": row["user_id"],
            "session_id": row["user_session"],
            "properties": {"product_id": row["product_id"], "price": float(row["price"])},
        }
        if row["brand"]:
            event["properties"]["brand"] = row["brand"]
        if row["event_type"] in ("cart", "purchase"):
            event["cart_id"] = f"cart-{row['user_session']}"
        events.append(event)
    return events


def busiest_users(events: list[dict[str, Any]], n: int) -> list[str]:
    """Users with views and a cart, most events first (real users, not made up)."""
    carts = {e["user_id"] for e in events if "cart_id" in e}
    counts = Counter(e["user_id"] for e in events if e["user_id"] in carts)
    return [user for user, _ in counts.most_common(n)]


@dataclass
class Shop:
    client: TestClient
    keys: Keys
    data_dir: Path
    events: list[dict[str, Any]]
    ingest: dict[str, str] = field(default_factory=dict)
    officer: dict[str, str] = field(default_factory=dict)

    def send(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        resp = self.client.post(
            "/ingest/shop/web/batch?wait=processed", json=events, headers=self.ingest
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def forget(self, user_id: str, kind: str | None = None) -> dict[str, Any]:
        body = None if kind is None else {"type": kind}
        resp = self.client.post(f"/v1/gdpr/forget/{user_id}", json=body, headers=self.officer)
        assert resp.status_code == 202, resp.text
        assert resp.headers["location"].endswith(resp.json()["request_id"])
        created: dict[str, Any] = resp.json()
        return created

    def status(self, request_id: str) -> dict[str, Any]:
        resp = self.client.get(f"/v1/gdpr/status/{request_id}", headers=self.officer)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def wait(self, request_id: str, until: str = "finished", timeout_s: float = 60) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            body = self.status(request_id)
            if body["status"] in ("finished", "failed") and (
                until == "finished" or body["propagation"] == until
            ):
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.1)

    def export(self, user_id: str) -> dict[str, Any]:
        resp = self.client.get(f"/v1/gdpr/export/{user_id}", headers=self.officer)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body


@pytest.fixture
def shop(app: Any, client: TestClient, keys: Keys, settings: Any) -> Shop:
    keys.project("shop")
    apply_yaml(app, SHOP)
    # Ids of this test's own: with the Kafka log, dedup keys (project/event id) live in the
    # Redis that tests running at the same time on the other xdist worker share.
    run = uuid.uuid4().hex[:6]
    events = [{**e, "event_id": f"{e['event_id']}-{run}"} for e in rees46_events()]
    found = Shop(client, keys, settings.data_dir, events)
    found.ingest = keys.headers([Role.INGEST], "shop")
    found.officer = keys.headers(["compliance"], "shop")
    for start in range(0, len(events), 1000):
        body = found.send(events[start : start + 1000])
        assert body["accepted"] == len(events[start : start + 1000]), body["items"][:3]
        assert body["processed"] is True
    return found


class Receiver(http.server.ThreadingHTTPServer):
    messages: list[tuple[dict[str, str], bytes]]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.messages.append((dict(self.headers), body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """A platform service's endpoint for ``gdpr.forget`` messages, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = Receiver(("127.0.0.1", port), _Handler)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def files_containing(root: Path, needles: set[str]) -> dict[str, set[str]]:
    """Every file under ``root`` whose raw bytes contain one of ``needles`` (and which)."""
    found: dict[str, set[str]] = {}
    encoded = {n: n.encode() for n in needles}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = {n for n, raw in encoded.items() if raw in data}
        if hits:
            found[str(path.relative_to(root))] = hits
    return found
