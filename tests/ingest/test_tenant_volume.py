"""A tenant's ingest responses reveal nothing of another tenant's traffic volume: no offsets
of the shared event log, no backlog of it (ISSUE-8 §2)."""

from __future__ import annotations

from typing import Any

from dataintel.auth.permissions import Role
from tests.conftest import apply_yaml
from tests.ingest.conftest import Shop

OTHER = """
project: {id: other, name: Other}
pipelines:
  - id: web
    name: Web
    events: [{name: page_view, fields: [{name: url, type: string}]}]
"""


def _a_responses(shop: Shop, tag: str) -> list[dict[str, Any]]:
    single = shop.post("/ingest/shop/web", {"event_id": f"{tag}-1", "event": "page_view"})
    batch = shop.post(
        "/ingest/shop/web/batch?wait=processed",
        [{"event_id": f"{tag}-2", "event": "page_view", "user_id": "u1"}],
    )
    assert [r.status_code for r in (single, batch)] == [202, 200]
    bodies: list[dict[str, Any]] = [single.json(), batch.json()]
    return bodies


def test_tenant_a_cannot_count_tenant_b_events(shop: Shop) -> None:
    shop.keys.project("other")
    apply_yaml(shop.app, OTHER)
    b_key = shop.keys.headers([Role.INGEST], "other")
    before = _a_responses(shop, "first")
    many = [{"event": "page_view", "user_id": f"b{i}"} for i in range(500)]
    resp = shop.client.post("/ingest/other/web/batch?wait=processed", json=many, headers=b_key)
    assert resp.json()["accepted"] == 500
    after = _a_responses(shop, "second")
    # Byte for byte the same answers, but for the client's own event ids.
    assert [str(b).replace("first", "X") for b in before] == [
        str(a).replace("second", "X") for a in after
    ]
    assert before[0] == {"status": "accepted", "event_id": "first-1"}
    assert before[1]["processed"] is True  # ?wait=processed still works
    stats = shop.client.get("/v1/events/stats", headers=shop.ingest).json()
    assert stats["processing_lag"] is None  # the shared log's backlog counts every tenant
