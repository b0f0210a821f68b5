"""Read-after-write (?wait=processed) and the event export, through HTTP, on the real
embedded log, processor and DuckDB analytics store."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from dataintel.api.state import ANALYTICS
from dataintel.auth.permissions import Role
from tests.conftest import assert_problem
from tests.ingest.conftest import Shop

BATCH = "/ingest/shop/web/batch"
# Yesterday: event times must stay within the allowed lateness (7 days) whenever this runs.
DAY = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")


def events(n: int, start: int = 0, user: str = "u1") -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"e{i:05d}",
            "event": "cart_add",
            "timestamp": f"{DAY}T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "user_id": user if i % 2 == 0 else "u2",
            "properties": {"sku": f"sku-{i}", "price": i + 0.5, "meta": {"tags": ["é", i]}},
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def loaded(shop: Shop, make_settings: Any) -> Shop:
    resp = shop.post(f"{BATCH}?wait=processed", events(250))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["processed"] is True
    assert body["accepted"] == 250
    return shop


def analyst(shop: Shop) -> dict[str, str]:
    return shop.keys.headers([Role.ANALYST], "shop")


def test_wait_processed_makes_events_visible_in_the_analytics_store(loaded: Shop) -> None:
    analytics = loaded.app.state.dataintel.port(ANALYTICS)
    table = analytics.sql("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events")
    assert table.to_pylist() == [{"n": 250, "d": 250}]


def test_single_event_wait_processed_and_duplicate(shop: Shop) -> None:
    event = events(1)[0]
    first = shop.post("/ingest/shop/web?wait=processed", event)
    assert first.status_code == 202, first.text
    assert first.json()["processed"] is True
    again = shop.post("/ingest/shop/web?wait=processed", event)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    rows = shop.app.state.dataintel.port(ANALYTICS).sql("SELECT count(*) AS n FROM events")
    assert rows.to_pylist() == [{"n": 1}]


def test_wait_param_is_validated(shop: Shop) -> None:
    assert_problem(shop.post(f"{BATCH}?wait=soon", events(1)), 422, field="wait")


def test_export_ndjson_streams_every_row_in_time_order(loaded: Shop) -> None:
    resp = loaded.client.get("/v1/export/events", headers=analyst(loaded))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    rows = [orjson.loads(line) for line in resp.content.splitlines()]
    assert len(rows) == 250
    assert [r["event_id"] for r in rows] == [f"e{i:05d}" for i in range(250)]
    assert rows[3]["properties"] == {"sku": "sku-3", "price": 3.5, "meta": {"tags": ["é", 3]}}
    assert rows[0]["timestamp"] == f"{DAY}T10:00:00Z"


def test_export_filters_and_formats(loaded: Shop) -> None:
    h = analyst(loaded)
    resp = loaded.client.get(
        "/v1/export/events",
        params={"user_id": "u1", "start": f"{DAY}T10:01:00Z", "end": f"{DAY}T10:02:00Z"},
        headers={**h, "Accept": "text/csv"},
    )
    assert resp.status_code == 200
    table = pacsv.read_csv(io.BytesIO(resp.content))
    assert table.num_rows == 30  # even i in [60, 120)
    assert set(table.column("user_id").to_pylist()) == {"u1"}
    parquet = loaded.client.get("/v1/export/events", params={"format": "parquet"}, headers=h)
    assert parquet.status_code == 200
    read = pq.read_table(io.BytesIO(parquet.content))
    assert read.num_rows == 250
    assert read.schema.field("timestamp").type.tz == "UTC"
    none = loaded.client.get("/v1/export/events", params={"event": "page_view"}, headers=h)
    assert none.status_code == 200
    assert none.content == b""


def test_export_pages_with_a_cursor_resume_exactly(loaded: Shop) -> None:
    h = analyst(loaded)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        resp = loaded.client.get("/v1/export/events", params=params, headers=h)
        assert resp.status_code == 200
        seen += [orjson.loads(line)["event_id"] for line in resp.content.splitlines()]
        cursor = resp.headers.get("x-next-cursor")
        if cursor is None:
            break
    assert seen == [f"e{i:05d}" for i in range(250)]


def test_export_errors_and_tenancy(loaded: Shop) -> None:
    h = analyst(loaded)
    assert_problem(
        loaded.client.get("/v1/export/events", params={"cursor": "nope"}, headers=h),
        422,
        field="cursor",
    )
    assert_problem(loaded.client.get("/v1/export/events", headers=loaded.ingest), 403)
    loaded.keys.project("other")
    other = loaded.keys.headers([Role.ANALYST], "other")
    resp = loaded.client.get("/v1/export/events", headers=other)
    assert resp.status_code == 200
    assert resp.content == b""
    cross = loaded.client.get("/v1/export/events", params={"project_id": "shop"}, headers=other)
    assert_problem(cross, 404)
    admin = loaded.keys.headers([Role.ADMIN])
    assert_problem(loaded.client.get("/v1/export/events", headers=admin), 422, field="project_id")
