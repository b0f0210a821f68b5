"""Demo data: 5,417 real shop events, sent through the running service's ingest API.

The events are real: a slice of the REES46 multi-category store data (October 2019, Kaggle
"eCommerce behavior data from multi category store" by Michael Kechinov, data of the REES46
Marketing Platform, https://rees46.com; free to use with this attribution): every cart and
purchase of 02:10-02:50 UTC, the views of those sessions, and the first 4,000 other views.
They are mapped onto the demo-shop pipeline (view → product_view, cart → cart_add,
purchase → purchase) and shifted in time so the slice ends now, keeping their spacing.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

FILE = "demo-events.csv.gz"
BATCH = 2_000


def demo_events(now: datetime | None = None) -> list[dict[str, Any]]:
    raw = resources.files("dataintel.config.declarative").joinpath(FILE).read_bytes()
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(raw).decode())))
    end = max(int(r["offset_s"]) for r in rows)
    start = (now or datetime.now(UTC)) - timedelta(seconds=end + 60)
    return [_event(r, start) for r in rows]


def _event(row: dict[str, str], start: datetime) -> dict[str, Any]:
    when = (start + timedelta(seconds=int(row["offset_s"]))).isoformat()
    price = float(row["price"])
    base = {
        "event_id": f"rees46-{row['row']}",
        "timestamp": when,
        "user_id": row["user_id"],
        "session_id": row["user_session"],
        "cart_id": f"cart-{row['user_session']}",
    }
    kind = row["event_type"]
    if kind == "cart":
        props = {"product_id": row["product_id"], "price": price, "quantity": 1, "currency": "USD"}
        return {**base, "event": "cart_add", "properties": props}
    if kind == "purchase":
        props = {"order_id": f"order-{row['row']}", "revenue": price, "items": 1, "currency": "USD"}
        return {**base, "event": "purchase", "properties": props}
    props = {
        "product_id": row["product_id"],
        "price": price,
        "category": row["category"],
        "currency": "USD",
    }
    return {**base, "event": "product_view", "properties": props}


def _batches(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(events), BATCH):
        yield events[i : i + BATCH]


def send_demo_events(base_url: str, key: str, project_id: str = "demo-shop") -> int:
    """Wait for the service, send the demo events; return how many it accepted (re-sending
    is harmless: they come back as duplicates)."""
    _wait_ready(base_url)
    accepted = 0
    for batch in _batches(demo_events()):
        request = urllib.request.Request(  # noqa: S310 - the service's own http URL
            f"{base_url}/ingest/{project_id}/web/batch?wait=processed",
            data=json.dumps(batch).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
            accepted += int(json.load(resp)["accepted"])
    return accepted


def _wait_ready(base_url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/health/ready", timeout=2):  # noqa: S310
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
