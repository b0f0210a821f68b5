"""A batch mixing valid and rejected events, sent with ?wait=processed right after a deploy
that builds a feature: the rejected ones' dead letters commit before the request waits, so
the processor's own metadata writes (the backfill's progress) are not blocked behind them on
SQLite, and the answer says processed: true (it used to wait out the timeout and say
false)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Keys, apply_yaml

SHOP = """
project: {id: shop, name: Shop}
pipelines:
  - id: web
    name: Web
    events: [{name: view, fields: [{name: price, type: number}]}]
features:
  - {name: views, pipeline_id: web, source_event: view, aggregation: COUNT, windows: [1h]}
"""


def test_a_mixed_batch_is_processed_without_waiting_out_the_timeout(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    apply_yaml(app, SHOP)
    ingest = keys.headers(["ingest"], "shop")
    now = datetime.now(UTC).isoformat()
    good = [
        {"event": "view", "user_id": f"u{i}", "timestamp": now, "properties": {"price": 1.0}}
        for i in range(5)
    ]
    bad = {"event": "view", "user_id": "x", "timestamp": now, "properties": {"price": "cheap"}}
    sent = client.post("/ingest/shop/web/batch?wait=processed", json=[*good, bad], headers=ingest)
    assert sent.status_code == 200, sent.text
    assert (sent.json()["accepted"], sent.json()["rejected"]) == (5, 1)
    assert sent.json()["processed"] is True
    service = keys.headers(["service"], "shop")
    assert client.get("/features/shop/users/u0", headers=service).json()["values"]["views_1h"] == 1
    letters = client.get(
        "/api/v1/projects/shop/pipelines/web/dead-letters", headers=keys.headers(["admin"], "shop")
    )
    assert letters.status_code == 200, letters.text
    assert len(letters.json()["items"]) == 1  # the rejected event, kept
