"""GET /v1/export/predictions: every prediction with its outcome equals a brute-force
reading of the rule (first purchase of the cart strictly after the prediction and within
the horizon; pending while the horizon runs), on DuckDB and chDB; and through HTTP: every
format readable, pages by cursor that add up to the whole, filters, tenants, permissions,
the audit entry."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataintel.auth.permissions import Role
from dataintel.export.formats import ExportFormat
from dataintel.export.predictions import PredictionQuery, export_predictions
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.eventlog.port import LogEntry
from dataintel.storage.records import StoredEvent, encode
from tests.analytics.conftest import Platform
from tests.conftest import assert_problem

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_US = 3_600_000_000


def us(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


def generate(seed: int, start: datetime, n_carts: int = 60) -> list[dict[str, Any]]:
    """Carts with 0-3 predictions and 0-3 purchases at random offsets (some before the
    prediction, some exactly at the 2 h horizon, some after it, some at the same instant),
    predictions without a cart, and other events."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for c in range(n_carts):
        cart, user = f"c{c}", f"u{c % 17}"
        base = start + timedelta(minutes=rng.randrange(0, 60 * 40))
        for k in range(rng.randrange(0, 4)):
            at = base + timedelta(minutes=rng.choice([0, 5, 30, 90]) * k)
            out.append(
                {
                    "event": "prediction",
                    "ts": at,
                    "cart_id": cart,
                    "user_id": user,
                    "properties": {
                        "probability": round(rng.random(), 4),
                        "confidence": rng.choice([0.5, 0.9]),
                        "recommended_action": rng.choice(["none", "discount", "reminder"]),
                        "model_version": rng.choice(["v1", "v2"]),
                    },
                }
            )
        for k in range(rng.randrange(0, 4)):
            shift = rng.choice([-10, 0, 1, 60, 119, 120, 121, 300])  # minutes after base
            out.append(
                {
                    "event": "purchase",
                    "ts": base + timedelta(minutes=shift),
                    "cart_id": cart,
                    "user_id": user,
                    "properties": {
                        "order_id": f"o{c}-{k}",
                        "revenue": float(rng.randrange(5, 500)),
                    },
                }
            )
        out.append(
            {
                "event": "cart_add",
                "ts": base,
                "cart_id": cart,
                "user_id": user,
                "properties": {"product_id": "p"},
            }
        )
    for i in range(5):
        out.append(
            {
                "event": "prediction",
                "ts": start + timedelta(hours=i),
                "user_id": "solo",
                "properties": {"probability": 0.1, "model_version": "v1"},
            }
        )
    for i, e in enumerate(out):
        e["event_id"] = f"e{i:05d}"
    return out


def reference(
    events: list[dict[str, Any]],
    start: datetime,
    end: datetime,
    horizon_us: int,
    now_us: int,
    versions: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    buys = [e for e in events if e["event"] == "purchase" and e.get("cart_id")]
    rows = []
    for p in events:
        if p["event"] != "prediction" or not start <= p["ts"] < end:
            continue
        mv = p["properties"].get("model_version")
        if versions and mv not in versions:
            continue
        t = us(p["ts"])
        found = sorted(
            (
                (us(b["ts"]), b["event_id"], b)
                for b in buys
                if b["cart_id"] == p.get("cart_id") and 0 < us(b["ts"]) - t <= horizon_us
            ),
            key=lambda x: (x[0], x[1]),
        )
        first = found[0][2] if found else None
        outcome = (
            "purchased" if first else ("pending" if t + horizon_us > now_us else "not_purchased")
        )
        rows.append(
            {
                "event_id": p["event_id"],
                "timestamp": p["ts"],
                "user_id": p.get("user_id"),
                "cart_id": p.get("cart_id"),
                "model_version": mv,
                "probability": p["properties"].get("probability"),
                "confidence": p["properties"].get("confidence"),
                "recommended_action": p["properties"].get("recommended_action"),
                "outcome": outcome,
                "purchased_at": first["ts"] if first else None,
                "order_id": first["properties"]["order_id"] if first else None,
                "revenue": first["properties"]["revenue"] if first else None,
            }
        )
    return sorted(rows, key=lambda r: (r["timestamp"], r["event_id"]))


def load(store: AnalyticsStore, events: list[dict[str, Any]], project_id: str = "shop") -> None:
    entries = []
    for offset, e in enumerate(events):
        stored: StoredEvent = {
            "project_id": project_id,
            "pipeline_id": "platform",
            "pipeline_version": 1,
            "event_id": e["event_id"],
            "event": e["event"],
            "ts": us(e["ts"]),
            "received_at": us(e["ts"]),
            "user_id": e.get("user_id"),
            "cart_id": e.get("cart_id"),
            "session_id": None,
            "properties": e["properties"],
        }
        entries.append(LogEntry(0, offset, encode(stored)))
    store.apply(entries)


def rows_of(body: bytes) -> list[dict[str, Any]]:
    table = pq.read_table(pa.BufferReader(body))
    return table.to_pylist()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_outcomes_equal_the_brute_force_rule_on_both_engines(
    store: AnalyticsStore, seed: int
) -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    events = generate(seed, start)
    load(store, events)
    load(store, generate(seed + 100, start)[:40], project_id="rival")
    now = start + timedelta(hours=30)  # predictions after now - 2 h are still pending
    for lo, hi, versions in (
        (start - timedelta(days=1), start + timedelta(days=3), ()),
        (start + timedelta(hours=5), start + timedelta(hours=20), ("v2",)),
    ):
        q = PredictionQuery(
            "shop", us(lo), us(hi), 2 * HOUR_US, us(now), "purchase", "revenue", versions
        )
        stream = export_predictions(store, q, ExportFormat.PARQUET)
        got = rows_of(b"".join(stream.body))
        want = reference(events, lo, hi, 2 * HOUR_US, us(now), versions)
        assert got == want
        assert stream.sent.rows == len(want)
    outcomes = {
        r["outcome"]
        for r in reference(
            events, start - timedelta(days=1), start + timedelta(days=3), 2 * HOUR_US, us(now)
        )
    }
    assert outcomes == {"purchased", "pending", "not_purchased"}  # every branch is exercised


# --- through HTTP ---------------------------------------------------------------------------

PATH = "/v1/export/predictions"


@pytest.fixture
def shop(platform: Platform) -> tuple[dict[str, str], list[dict[str, Any]]]:
    headers = platform.project("shop")
    start = (datetime.now(UTC) - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    events = generate(7, start, n_carts=40)
    wire = [
        {
            "event_id": e["event_id"],
            "event": e["event"],
            "timestamp": e["ts"].isoformat(),
            **({"user_id": e["user_id"]} if e.get("user_id") else {}),
            **({"cart_id": e["cart_id"]} if e.get("cart_id") else {}),
            "properties": e["properties"],
        }
        for e in events
    ]
    platform.send("shop", wire)
    return headers, events


def test_every_format_and_page_holds_the_reference(
    platform: Platform, shop: tuple[dict[str, str], list[dict[str, Any]]]
) -> None:
    headers, events = shop
    client = platform.client
    params = {"horizon": "2h"}
    lo, hi = datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1)
    want = reference(events, lo, hi, 2 * HOUR_US, us(datetime.now(UTC)))
    parquet = client.get(PATH, params={**params, "format": "parquet"}, headers=headers)
    assert parquet.status_code == 200, parquet.text
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert rows_of(parquet.content) == want

    lines = client.get(PATH, params=params, headers=headers)
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    ndjson = [json.loads(line) for line in lines.text.splitlines()]
    assert [r["event_id"] for r in ndjson] == [r["event_id"] for r in want]
    purchased = next(r for r in ndjson if r["outcome"] == "purchased")
    assert purchased["purchased_at"].endswith("Z")
    table = list(
        csv.DictReader(
            io.StringIO(client.get(PATH, params={**params, "format": "csv"}, headers=headers).text)
        )
    )
    assert [(r["event_id"], r["outcome"]) for r in table] == [
        (r["event_id"], r["outcome"]) for r in want
    ]

    pages, cursor = [], None
    while True:
        page = client.get(
            PATH,
            params={**params, "limit": 7, **({"cursor": cursor} if cursor else {})},
            headers=headers,
        )
        assert page.status_code == 200, page.text
        pages += [json.loads(line)["event_id"] for line in page.text.splitlines()]
        cursor = page.headers.get("x-next-cursor")
        if cursor is None:
            break
    assert pages == [r["event_id"] for r in want]

    v1 = client.get(PATH, params={**params, "model_version": "v1"}, headers=headers)
    assert {json.loads(line)["model_version"] for line in v1.text.splitlines()} == {"v1"}

    from tests.audit.test_audit_trail import trail  # the export is in the audit trail

    acts = [
        e
        for e in trail(client, platform.keys.headers([Role.COMPLIANCE], "shop"))
        if e["action"] == "export_predictions"
    ]
    assert acts[0]["detail"]["rows"] == len(want)
    assert acts[0]["detail"]["complete"] is True


def test_tenants_roles_and_bad_parameters(
    platform: Platform, shop: tuple[dict[str, str], list[dict[str, Any]]]
) -> None:
    headers, _ = shop
    client = platform.client
    other = platform.project("other")
    assert client.get(PATH, headers=other).text == ""  # the shop's predictions are not theirs
    assert_problem(client.get(PATH, params={"project_id": "shop"}, headers=other), 404)
    assert_problem(client.get(PATH, headers=platform.keys.headers([Role.SERVICE], "shop")), 403)
    for params, field in (
        ({"horizon": "soon"}, "horizon"),
        ({"horizon": "lifetime"}, "horizon"),
        ({"cursor": "yesterday"}, "cursor"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"limit": 0}, "limit"),
        ({"model_version": ""}, "model_version"),
    ):
        assert_problem(client.get(PATH, params=params, headers=headers), 422, field=field)
