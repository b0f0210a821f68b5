"""Real shop events (../shared/data/real, see each SOURCE.md) ingested through the HTTP API:
the analytics store ends up with exactly the file's events, per event type."""

from __future__ import annotations

import csv
import gzip
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.api.state import ANALYTICS
from dataintel.auth.permissions import Role
from tests.conftest import IN_CI, Keys, apply_yaml

REAL = Path(os.environ.get("DATAINTEL_REAL_DATA", Path(__file__).parents[3] / "shared/data/real"))
TEN_YEARS = 10 * 365 * 86400

CONFIG = """
project: {id: real, name: Real shops}
pipelines:
  - id: rees46
    name: REES46 multi-category store
    events:
"""
for _name in ("view", "cart", "remove_from_cart", "purchase"):
    CONFIG += f"""      - name: {_name}
        fields:
          - {{name: product_id, type: string, required: true}}
          - {{name: category_id, type: string}}
          - {{name: category_code, type: string}}
          - {{name: brand, type: string}}
          - {{name: price, type: number, required: true}}
"""
CONFIG += """  - id: taobao
    name: Taobao user behaviour
    unknown_properties: reject
    events:
"""
for _name in ("pv", "cart", "fav", "buy"):
    CONFIG += f"""      - name: {_name}
        fields:
          - {{name: item_id, type: string, required: true}}
          - {{name: category_id, type: string, required: true}}
"""


def _file(relative: str) -> Path:
    path = REAL / relative
    if not path.exists():
        if IN_CI:
            pytest.fail(f"real data missing: {path}")
        pytest.skip(f"real data missing: {path}")
    return path


def rees46(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            props: dict[str, Any] = {
                "product_id": row["product_id"],
                "category_id": row["category_id"],
                "price": float(row["price"]),
            }
            for key in ("category_code", "brand"):
                if row[key]:
                    props[key] = row[key]
            yield {
                "event_id": f"rees46-{i}",
                "event": row["event_type"],
                "timestamp": row["event_time"],  # '2019-10-01 00:00:00 UTC'
                "user_id": row["user_id"],
                "session_id": row["user_session"],
                "properties": props,
            }


def taobao(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", newline="") as f:
        for i, (user, item, category, behavior, ts) in enumerate(csv.reader(f)):
            yield {
                "event_id": f"{path.name[:24]}-{i}",
                "event": behavior,
                "timestamp": int(ts),  # Unix seconds
                "user_id": user,
                "properties": {"item_id": item, "category_id": category},
            }


def ingest(client: TestClient, headers: dict[str, str], url: str, events: list[Any]) -> None:
    for start in range(0, len(events), 10_000):
        batch = events[start : start + 10_000]
        resp = client.post(f"{url}?wait=processed", json=batch, headers=headers)
        assert resp.status_code == 200, resp.text[:500]
        body = resp.json()
        assert body["rejected"] == 0, [i for i in body["items"] if i["status"] == "rejected"][:3]
        assert body["processed"] is True


@pytest.fixture
def real(make_settings: Any) -> Any:
    from dataintel.main import create_app

    return create_app(make_settings(ingest_allowed_lateness_seconds=TEN_YEARS))


def stored_counts(app: Any, pipeline: str) -> Counter[str]:
    table = app.state.dataintel.port(ANALYTICS).sql(
        "SELECT event, count(*) AS n, count(DISTINCT event_id) AS d FROM events "
        "WHERE project_id = 'real' AND pipeline_id = ? GROUP BY event",
        [pipeline],
    )
    rows = table.to_pylist()
    assert all(r["n"] == r["d"] for r in rows), rows
    return Counter({r["event"]: r["n"] for r in rows})


def test_real_rees46_and_taobao_events_are_stored_exactly_per_type(real: Any) -> None:
    with TestClient(real) as client:
        keys = Keys(real)
        keys.project("real", "Real shops")
        apply_yaml(real, CONFIG)
        headers = keys.headers([Role.INGEST], "real")

        shop = list(rees46(_file("rees46-multicategory/2019-Oct_head_20191001T0000-0250Z.csv.gz")))
        ingest(client, headers, "/ingest/real/rees46/batch", shop)
        expected = Counter(e["event"] for e in shop)
        assert expected == {"view": 17_055, "purchase": 214, "cart": 165}  # SOURCE.md
        assert stored_counts(real, "rees46") == expected

        tb: list[dict[str, Any]] = []
        for name in (
            "UserBehavior_slice_20171126T0100-0310Z.csv.gz",
            "UserBehavior_last10000rows_users_999477-999999.csv.gz",
        ):
            tb += taobao(_file(f"taobao-userbehavior/{name}"))
        ingest(client, headers, "/ingest/real/taobao/batch", tb)
        expected = Counter(e["event"] for e in tb)
        # SOURCE.md: slice pv 98,361 cart 6,063 fav 3,383 buy 2,493; tail pv 9,046 cart 536
        # fav 212 buy 206.
        assert expected == {"pv": 107_407, "cart": 6_599, "fav": 3_595, "buy": 2_699}
        assert stored_counts(real, "taobao") == expected

        # Re-sending a file is a no-op: every event is a duplicate.
        resp = client.post("/ingest/real/rees46/batch", json=shop[:5_000], headers=headers)
        assert resp.json()["duplicate"] == 5_000
        assert stored_counts(real, "rees46") == Counter(e["event"] for e in shop)
