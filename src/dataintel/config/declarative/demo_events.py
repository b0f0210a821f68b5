"""Demo data: 17,434 real shop events in 5,066 real sessions, sent through the ingest API.

The events are real: the first 17,434 rows of the REES46 multi-category store data (October
2019, Kaggle "eCommerce behavior data from multi category store" by Michael Kechinov, data of
the REES46 Marketing Platform, https://rees46.com; free to use with this attribution). They
are mapped onto the demo-shop pipeline (view → product_view, cart → cart_add, purchase →
purchase). The source covers under three hours; so that the dashboard shows days, each
*session* is moved, whole and with its own spacing kept, to a start time drawn over the last
7 days (seeded, more sessions in the evening than at night). What each shopper did, and in
which order and at which pace, is as in the data; only when the session happened is chosen.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

FILE = "demo-events.csv.gz"
BATCH = 2_000


DAYS = 7
SEED = 46
# Relative weight of a session starting in each UTC hour (a shop's evening peak).
HOURLY = (2, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6, 7, 8, 9, 10, 10, 9, 7, 5, 3)


def demo_events(now: datetime | None = None) -> list[dict[str, Any]]:
    """The demo events in time order, every session ending before ``now``."""
    raw = resources.files("dataintel.config.declarative").joinpath(FILE).read_bytes()
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(raw).decode())))
    sessions: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        sessions.setdefault(row["user_session"], []).append(row)
    end = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(minutes=1)
    rng = random.Random(SEED)  # noqa: S311 - a demo's reproducible draw, not a secret
    hours = [end - timedelta(hours=h) for h in range(1, DAYS * 24)]
    weights = [HOURLY[h.hour] for h in hours]
    events: list[tuple[datetime, int, dict[str, Any]]] = []
    for name in sorted(sessions):
        group = sessions[name]
        first = min(int(r["offset_s"]) for r in group)
        last = max(int(r["offset_s"]) for r in group)
        hour = rng.choices(hours, weights)[0]
        start = min(hour + timedelta(seconds=rng.randrange(3600)), end) - timedelta(
            seconds=last - first
        )
        for row in group:
            when = start + timedelta(seconds=int(row["offset_s"]) - first)
            events.append((when, int(row["row"]), _event(row, when)))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e for _, _, e in events]


def _event(row: dict[str, str], at: datetime) -> dict[str, Any]:
    when = at.isoformat()
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


def send_demo_events(
    base_url: str,
    key: str,
    project_id: str = "demo-shop",
    events: list[dict[str, Any]] | None = None,
) -> int:
    """Wait for the service, send the demo events; return how many it accepted (re-sending
    is harmless: they come back as duplicates)."""
    _wait_ready(base_url)
    accepted = 0
    for batch in _batches(demo_events() if events is None else events):
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
