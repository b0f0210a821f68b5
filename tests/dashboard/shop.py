"""A small shop on the platform pipeline: carts, interventions, holdouts, purchases over the
last day, sent through the live server's ingest API."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


def events(seed: int = 3, carts: int = 60) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out: list[dict[str, Any]] = []
    for i in range(carts):
        t = now - timedelta(hours=20) + timedelta(minutes=rng.randrange(0, 18 * 60))
        user, cart = f"u{i % 40}", f"cart-{i}"
        base = {"user_id": user, "cart_id": cart}
        out.append(
            {
                **base,
                "event_id": f"a{i}",
                "event": "cart_add",
                "timestamp": t.isoformat(),
                "properties": {"product_id": f"p{rng.randrange(50)}", "price": 10.0 + i},
            }
        )
        if rng.random() < 0.5:
            out.append(
                {
                    **base,
                    "event_id": f"i{i}",
                    "event": "intervention",
                    "timestamp": (t + timedelta(minutes=45)).isoformat(),
                    "properties": {
                        "intervention_id": f"iv{i}",
                        "channel": "email",
                        "action": "reminder",
                        "status": "sent",
                    },
                }
            )
        else:
            out.append(
                {
                    **base,
                    "event_id": f"h{i}",
                    "event": "holdout",
                    "timestamp": (t + timedelta(minutes=45)).isoformat(),
                    "properties": {},
                }
            )
        if rng.random() < 0.4:
            out.append(
                {
                    **base,
                    "event_id": f"p{i}",
                    "event": "purchase",
                    "timestamp": (t + timedelta(minutes=rng.choice([10, 90]))).isoformat(),
                    "properties": {"order_id": f"o{i}", "revenue": 20.0 + i},
                }
            )
    return [e for e in out if e["timestamp"] < now.isoformat()]


def open_shop(http: httpx.Client, admin: dict[str, str], project_id: str) -> None:
    """The platform template deployed on an existing project."""
    base = f"/api/v1/projects/{project_id}"
    assert http.post(f"{base}/templates/platform", headers=admin).status_code == 201
    assert http.post(f"{base}/deployments", headers=admin).status_code == 201


def send(http: httpx.Client, admin: dict[str, str], project_id: str, batch: list[Any]) -> None:
    resp = http.post(
        f"/ingest/{project_id}/platform/batch?wait=processed", json=batch, headers=admin
    )
    assert resp.status_code == 200, resp.text
    assert all(i["status"] == "accepted" for i in resp.json()["items"]), resp.text[:500]
