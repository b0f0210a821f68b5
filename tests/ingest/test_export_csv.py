"""CSV export writes timestamps as the API does everywhere else (ISO-8601 UTC, ``Z``)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import orjson

from dataintel.auth.permissions import Role
from tests.ingest.conftest import Shop


def _parse(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


def test_csv_timestamps_are_iso_8601_like_the_json_export(shop: Shop) -> None:
    # Recent event times (within the allowed lateness), one with a fraction, one without.
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    frac, whole = base.replace(microsecond=574680), base + timedelta(seconds=1)
    iso = [t.isoformat().replace("+00:00", "Z") for t in (frac, whole)]
    assert iso[0].endswith(".574680Z")
    batch = [
        {"event_id": "frac", "event": "cart_add", "timestamp": iso[0]},
        {"event_id": "whole", "event": "cart_add", "timestamp": iso[1]},
    ]
    for item in batch:
        item["properties"] = {"sku": "a", "price": 1}
    resp = shop.post("/ingest/shop/web/batch?wait=processed", batch)
    assert resp.status_code == 200, resp.text
    headers = shop.keys.headers([Role.ANALYST], "shop")
    got = shop.client.get("/v1/export/events", params={"format": "csv"}, headers=headers)
    assert got.status_code == 200, got.text
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert [r["timestamp"] for r in rows] == iso  # e.g. ...T23:40:09.574680Z, ...T23:40:10Z
    assert "." not in iso[1]
    assert _parse(rows[0]["timestamp"]) == frac
    for row in rows:
        received = _parse(row["received_at"])
        assert abs((datetime.now(UTC) - received).total_seconds()) < 600
    # The NDJSON export (and so the rest of the API) writes the very same strings.
    ndjson = shop.client.get("/v1/export/events", params={"format": "ndjson"}, headers=headers)
    lines = [orjson.loads(line) for line in ndjson.content.splitlines()]
    assert [(r["timestamp"], r["received_at"]) for r in rows] == [
        (line["timestamp"], line["received_at"]) for line in lines
    ]
