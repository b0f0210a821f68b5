"""What the fault tests share: the shop project they deploy, cart_add events of one user
(unique ids, now), ingest until refused, a metric's value from /metrics, and no dedup keys
left in Redis by an earlier run (the Kafka log's dedup window would make this run's events
duplicates)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dataintel.storage.eventlog.dedup import REDIS_PREFIX
from tests.conftest import REDIS_URL, Keys, apply_yaml, require_service

# The fault tests' shop: one pipeline, a 1 h cart count per user.
SHOP = """
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events: [{name: cart_add, fields: [{name: price, type: number}]}]
features:
  - {name: carts, pipeline_id: web, source_event: cart_add, aggregation: COUNT, windows: [1h]}
"""
INGEST = "/ingest/shop/web/batch"


def open_shop(app: FastAPI) -> Keys:
    """The shop project with SHOP deployed; its keys (``keys.headers([...], "shop")``)."""
    keys = Keys(app)
    keys.project("shop")
    apply_yaml(app, SHOP)
    return keys


def ingest_until_refused(
    client: TestClient,
    headers: dict[str, str],
    batch: Callable[[], list[dict[str, Any]]],
    tries: int,
) -> tuple[list[str], Any]:
    """Send ``batch()`` until an answer is not 200 (at most ``tries``): the acknowledged
    event ids, and the first refusal (None if every batch was taken)."""
    acked: list[str] = []
    for _ in range(tries):
        sent_batch = batch()
        sent = client.post(INGEST, json=sent_batch, headers=headers)
        if sent.status_code != 200:
            return acked, sent
        acked += [e["event_id"] for e in sent_batch]
    return acked, None


def cart_adds(n: int, user: str = "ada", note: str = "") -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    properties: dict[str, Any] = {"price": 1.0, **({"note": note} if note else {})}
    return [
        {
            "event_id": uuid.uuid4().hex,
            "event": "cart_add",
            "timestamp": now,
            "user_id": user,
            "properties": properties,
        }
        for _ in range(n)
    ]


def metric(client: TestClient, name: str) -> float:
    """The value of an unlabelled metric (or ``name`` with its labels) on /metrics."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} is not exported")


def forget_dedup_keys(project_id: str) -> None:
    require_service("redis", "127.0.0.1", 6379)
    client = redis.Redis.from_url(REDIS_URL)
    stale = list(client.scan_iter(f"{REDIS_PREFIX}{project_id}/*"))
    if stale:
        client.delete(*stale)
    client.close()
