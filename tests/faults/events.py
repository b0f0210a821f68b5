"""What the fault tests send and read: cart_add events of one user (unique ids, now), a
metric's value from /metrics, and no dedup keys left in Redis by an earlier run (the Kafka
log's dedup window would make this run's events duplicates)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import redis
from fastapi.testclient import TestClient

from dataintel.storage.eventlog.dedup import REDIS_PREFIX
from tests.conftest import REDIS_URL, require_service


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
