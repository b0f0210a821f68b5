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

    def add(i: int, event_id: str, name: str, at: datetime, **props: Any) -> None:
        out.append(
            {
                "event_id": event_id,
                "event": name,
                "timestamp": at.isoformat(),
                "user_id": f"u{i % 40}",
                "cart_id": f"cart-{i}",
                "properties": props,
            }
        )

    for i in range(carts):
        t = now - timedelta(hours=20) + timedelta(minutes=rng.randrange(0, 18 * 60))
        add(i, f"a{i}", "cart_add", t, product_id=f"p{rng.randrange(50)}", price=10.0 + i)
        p = rng.random()
        add(
            i,
            f"s{i}",
            "prediction",
            t + timedelta(seconds=30),
            probability=round(p, 4),
            model_version=f"m{i % 2}",
        )
        later = t + timedelta(minutes=45)
        if rng.random() < 0.5:
            add(
                i,
                f"i{i}",
                "intervention",
                later,
                intervention_id=f"iv{i}",
                channel="email",
                action="reminder",
                status="sent",
            )
        else:
            add(i, f"h{i}", "holdout", later)
        if rng.random() < 0.2 + 0.5 * p:
            minutes = rng.choice([10, 90])
            add(
                i,
                f"p{i}",
                "purchase",
                t + timedelta(minutes=minutes),
                order_id=f"o{i}",
                revenue=20.0 + i,
            )
    return sorted(
        (e for e in out if e["timestamp"] < now.isoformat()), key=lambda e: e["timestamp"]
    )


def open_shop(http: httpx.Client, admin: dict[str, str], project_id: str) -> None:
    """The platform template deployed on an existing project, outcomes known after 1 h."""
    base = f"/api/v1/projects/{project_id}"
    assert http.post(f"{base}/templates/platform", headers=admin).status_code == 201
    # Outcomes known after an hour, so today's predictions have them (the default is 7d).
    settings = {"outcome_horizon": "1h"}
    assert http.put(f"{base}/analytics-settings", json=settings, headers=admin).status_code == 200
    assert http.post(f"{base}/deployments", headers=admin).status_code == 201


def send(http: httpx.Client, admin: dict[str, str], project_id: str, batch: list[Any]) -> None:
    resp = http.post(
        f"/ingest/{project_id}/platform/batch?wait=processed", json=batch, headers=admin
    )
    assert resp.status_code == 200, resp.text
    assert all(i["status"] == "accepted" for i in resp.json()["items"]), resp.text[:500]
