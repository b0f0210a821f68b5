"""Point-in-time training sets: POST /v1/features/historical through HTTP on the real embedded
stack (ingest with ?wait=processed, DuckDB analytics), compared to the brute-force reference;
and the service itself on both engines (DuckDB, ClickHouse through chDB)."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from tests.conftest import Keys, apply_yaml, assert_problem
from tests.features.reference import reference_values
from tests.features.test_offline import ALL, SECOND, T0, P, World
from tests.storage.contract.test_analytics import ENGINES, url

from dataintel.auth.permissions import Role
from dataintel.config.deployments.active import CONFIGS, ActiveConfig
from dataintel.features.offline import historical, historical_input
from dataintel.features.offline.endpoints import router
from dataintel.features.offline.historical import HistoricalService
from dataintel.features.offline.historical_input import rows_table
from dataintel.features.offline.schemas import HistoricalFormat
from dataintel.model.snapshot import ConfigSnapshot
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics

URL = "/v1/features/historical"
HIST = """
project: {id: hist, name: Hist}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields:
          - {name: sku, type: string, required: true}
          - {name: price, type: number, required: true}
          - {name: gift, type: boolean}
      - name: purchase
        fields: [{name: revenue, type: number, required: true}]
features:
  - {name: adds, pipeline_id: web, source_event: cart_add, aggregation: COUNT,
     windows: [30s, 5m, 1h, 24h, lifetime]}
  - {name: spend, pipeline_id: web, source_event: cart_add, aggregation: SUM, field: price,
     windows: [1h, 7d]}
  - {name: avg_price, pipeline_id: web, source_event: cart_add, aggregation: AVG,
     field: price, windows: [1h, lifetime]}
  - {name: cheapest, pipeline_id: web, source_event: cart_add, aggregation: MIN,
     field: price, windows: [24h]}
  - {name: priciest, pipeline_id: web, source_event: cart_add, aggregation: MAX,
     field: price, windows: [7d]}
  - {name: skus, pipeline_id: web, source_event: cart_add, aggregation: COUNT_DISTINCT,
     field: sku, windows: [5m, 24h, lifetime]}
  - {name: first_sku, pipeline_id: web, source_event: cart_add, aggregation: FIRST,
     field: sku, windows: [7d]}
  - {name: last_price, pipeline_id: web, source_event: cart_add, aggregation: LAST,
     field: price, windows: [1h, lifetime]}
  - {name: last_gift, pipeline_id: web, source_event: cart_add, aggregation: LAST,
     field: gift, windows: [lifetime]}
  - {name: last_sku, pipeline_id: web, source_event: cart_add, aggregation: LAST,
     field: sku, windows: [24h]}
  - {name: orders, pipeline_id: web, source_event: purchase, aggregation: COUNT,
     windows: [30d]}
  - {name: revenue, pipeline_id: web, source_event: purchase, aggregation: SUM,
     field: revenue, windows: [7d], enabled: false}
  - {name: cart_value, pipeline_id: web, source_event: cart_add, entity_key: cart_id,
     aggregation: SUM, field: price, windows: [1h, lifetime]}
"""
USERS = ["u1", "u2", "u3", "u4"]


def iso(us: int) -> str:
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    return when.isoformat().replace("+00:00", "Z")


def us_of(text: str) -> int:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return type(a) is type(b) and a == b


class Hist:
    def __init__(self, app: Any, client: TestClient, keys: Keys) -> None:
        if not any(getattr(r, "path", None) == URL for r in app.routes):
            app.include_router(router)  # until main.py wires it
        keys.project("hist")
        apply_yaml(app, HIST)
        self.app, self.client = app, client
        self.ingest = keys.headers([Role.INGEST], "hist")
        self.service = keys.headers([Role.SERVICE], "hist")
        self.events: list[dict[str, Any]] = []
        self.specs = app.state.dataintel.port(CONFIGS).get("hist").snapshot.features

    def send(self) -> None:
        rng = random.Random(4)
        now = datetime.now(UTC)
        base = (now - timedelta(days=5) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
            microseconds=1
        )
        body = []
        for i in range(120):
            ts = base + rng.randrange(0, 5 * 86400 * SECOND - 600 * SECOND)
            if i % 17 == 0 and body:  # same instant as an earlier event: ties by event_id
                ts = self.events[-1]["ts"]
            user = rng.choice(USERS)
            cart = f"c{rng.randrange(6)}" if i % 5 else None
            if i % 9 == 0:
                props: dict[str, Any] = {"revenue": round(rng.uniform(1, 90), 2)}
                name = "purchase"
            else:
                price = rng.choice([10.0, 12.5, 0.1, 99.99, 7.0, 3.25])
                props = {"sku": f"s{rng.randrange(8)}", "price": price}
                if i % 3:
                    props["gift"] = bool(i % 2)
                name = "cart_add"
            event = {
                "event_id": f"h{i:03d}",
                "event": name,
                "timestamp": iso(ts),
                "user_id": user,
                "cart_id": cart,
                "properties": props,
            }
            body.append(event)
            self.events.append(
                {
                    "project_id": "hist",
                    "pipeline_id": "web",
                    "event": name,
                    "event_id": event["event_id"],
                    "ts": ts,
                    "user_id": user,
                    "cart_id": cart,
                    "session_id": None,
                    "properties": props,
                }
            )
        resp = self.client.post(
            "/ingest/hist/web/batch?wait=processed", json=body, headers=self.ingest
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["processed"] is True

    def label_times(self) -> list[int]:
        times = sorted(e["ts"] for e in self.events)
        picks = times[::7]
        out = [times[0] - SECOND, times[-1] + 3600 * SECOND]
        for t in picks:
            out += [t - 1, t, t + 1, t + 30 * SECOND, t + 3600 * SECOND + 1]
        return out

    def post(self, body: Any, **kw: Any) -> Any:
        return self.client.post(URL, json=body, headers=self.service, **kw)

    def expected(self, entity: str, t: int, key: str = "user_id") -> dict[str, Any]:
        want: dict[str, Any] = {}
        for spec in self.specs:
            if spec.enabled and spec.entity_key == key:
                want.update(reference_values(self.events, spec, key, entity, t))
        return want


@pytest.fixture
def hist(app: Any, client: TestClient, keys: Keys) -> Hist:
    h = Hist(app, client, keys)
    h.send()
    return h


def json_rows(hist: Hist, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"entity_id": rng.choice([*USERS, "ghost"]), "timestamp": iso(t), "label": i % 2}
        for i, t in enumerate(hist.label_times())
    ]


def test_json_rows_get_every_value_as_of_their_time(hist: Hist) -> None:
    rows = json_rows(hist)
    resp = hist.post({"rows": rows})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["entity_key"] == "user_id"
    assert body["versions"]["adds"] == 1
    assert "revenue" not in body["versions"]
    assert "cart_value_1h" not in body["values"]  # another entity key
    assert len(body["rows"]) == len(rows)
    for sent, got in zip(rows, body["rows"], strict=True):
        assert got["entity_id"] == sent["entity_id"]
        assert got["label"] == sent["label"]
        assert us_of(got["timestamp"]) == us_of(sent["timestamp"])
        want = hist.expected(sent["entity_id"], us_of(sent["timestamp"]))
        assert set(got) == {"entity_id", "timestamp", "label", *want}
        assert list(want) == body["values"]
        for name, value in want.items():
            assert close(got[name], value), (sent, name, got[name], value)


def test_csv_and_parquet_hold_the_same_values(hist: Hist) -> None:
    rows = json_rows(hist, 1)
    features = ["adds", "spend_7d", "skus_24h", "last_price", "last_gift", "first_sku_7d"]
    as_json = hist.post({"rows": rows, "features": features}).json()
    names = as_json["values"]
    assert names == [
        "adds_30s",
        "adds_5m",
        "adds_1h",
        "adds_24h",
        "adds_lifetime",
        "spend_7d",
        "skus_24h",
        "last_price_1h",
        "last_price_lifetime",
        "last_gift_lifetime",
        "first_sku_7d",
    ]
    parquet = hist.post({"rows": rows, "features": features, "format": "parquet"})
    assert parquet.status_code == 200, parquet.text
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column_names == ["entity_id", "timestamp", "label", *names]
    assert table.schema.field("adds_5m").type == pa.int64()
    assert table.schema.field("last_price_1h").type == pa.float64()
    assert table.schema.field("last_gift_lifetime").type == pa.bool_()
    assert table.schema.field("first_sku_7d").type == pa.string()
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    for got, want in zip(table.select(names).to_pylist(), as_json["rows"], strict=True):
        assert all(close(got[n], want[n]) for n in names), (got, want)
    csv = hist.post({"rows": rows, "features": features, "format": "csv"})
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    text = pacsv.read_csv(
        io.BytesIO(csv.content),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in ["entity_id", "timestamp", "label", *names]}
        ),
    )
    for got, want in zip(text.to_pylist(), as_json["rows"], strict=True):
        assert got["timestamp"] == want["timestamp"].replace("Z", ".000000Z") or us_of(
            got["timestamp"]
        ) == us_of(want["timestamp"])
        for n in names:
            value, shown = want[n], got[n] or ""
            if isinstance(value, float):
                assert close(float(shown), value), (n, shown, value)
            elif isinstance(value, str):
                assert shown == value, (n, shown, value)
            else:
                assert shown == ("" if value is None else orjson.dumps(value).decode()), n


def test_uploads_parquet_and_csv_files(hist: Hist) -> None:
    times = hist.label_times()[:40]
    users = [USERS[i % 4] for i in range(len(times))]
    table = pa.table(
        {
            "row": pa.array(range(len(times)), pa.int64()),
            "entity_id": pa.array(users),
            "timestamp": pa.array([t // 1000 for t in times], pa.int64()),  # epoch ms
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    resp = hist.client.post(
        URL,
        files={"file": ("labels.parquet", sink.getvalue(), "application/octet-stream")},
        data={"features": "adds_1h, last_sku", "format": "json"},
        headers=hist.service,
    )
    assert resp.status_code == 200, resp.text
    got = resp.json()["rows"]
    assert [r["row"] for r in got] == list(range(len(times)))
    for user, t, row in zip(users, times, got, strict=True):
        want = hist.expected(user, t // 1000 * 1000)
        assert row["adds_1h"] == want["adds_1h"]
        assert row["last_sku_24h"] == want["last_sku_24h"]
        assert set(row) == {"row", "entity_id", "timestamp", "adds_1h", "last_sku_24h"}
    csv = "entity_id,timestamp,note\n" + "".join(
        f"{u},{iso(t)},n{i}\n" for i, (u, t) in enumerate(zip(users, times, strict=True))
    )
    resp = hist.client.post(
        URL,
        files={"file": ("labels.csv", csv.encode(), "text/csv")},
        data={"format": "parquet", "features": "orders"},
        headers=hist.service,
    )
    assert resp.status_code == 200, resp.text
    out = pq.read_table(io.BytesIO(resp.content)).to_pylist()
    assert [r["note"] for r in out] == [f"n{i}" for i in range(len(times))]
    for user, t, row in zip(users, times, out, strict=True):
        assert row["orders_30d"] == hist.expected(user, t)["orders_30d"]


def test_cart_features_by_entity_key(hist: Hist) -> None:
    t = max(e["ts"] for e in hist.events)
    rows = [{"entity_id": f"c{i}", "timestamp": t // SECOND} for i in range(7)]  # epoch s
    body = hist.post({"rows": rows, "entity_key": "cart_id"}).json()
    assert body["values"] == ["cart_value_1h", "cart_value_lifetime"]
    for row in body["rows"]:
        want = hist.expected(row["entity_id"], t // SECOND * SECOND, key="cart_id")
        assert all(close(row[k], v) for k, v in want.items()), (row, want)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rows": [{"entity_id": "u1", "timestamp": 1}], "features": ["nope"]}, "/body/features/0"),
        (
            {"rows": [{"entity_id": "u1", "timestamp": 1}], "features": ["revenue"]},
            "/body/features/0",
        ),
        (
            {"rows": [{"entity_id": "u1", "timestamp": 1}], "features": ["cart_value"]},
            "/body/features/0",
        ),
        (
            {"rows": [{"entity_id": "u1", "timestamp": 1}, {"timestamp": 1}]},
            "/body/rows/1/entity_id",
        ),
        ({"rows": [{"entity_id": "u1", "timestamp": "yesterday"}]}, "/body/rows/0/timestamp"),
        ({"rows": [{"entity_id": "u1", "timestamp": True}]}, "/body/rows/0/timestamp"),
        ({"rows": [{"entity_id": "", "timestamp": 1}]}, "/body/rows/0/entity_id"),
        ({"rows": []}, "/body/rows"),
        ({"rows": [{"entity_id": "u1", "timestamp": 1}], "extra": 1}, "/body/extra"),
        (
            {"rows": [{"entity_id": "u1", "timestamp": 1}], "entity_key": "store"},
            "/body/entity_key",
        ),
        ({"rows": [{"entity_id": "u1", "timestamp": 1}], "format": "xml"}, "/body/format"),
        (
            {"rows": [{"entity_id": "u1", "timestamp": 1, "x": {"a": 1}}], "format": "csv"},
            "/body/format",
        ),
        (
            {
                "rows": [
                    {"entity_id": "u1", "timestamp": 1, "x": 1},
                    {"entity_id": "u1", "timestamp": 1, "x": "a"},
                ]
            },
            "/body/rows",
        ),
        ({"rows": [{"entity_id": "u1", "timestamp": 1, "adds_5m": 1}]}, "/body/rows"),
    ],
)
def test_bad_json_input_names_the_field(hist: Hist, body: dict[str, Any], field: str) -> None:
    assert_problem(hist.post(body), 422, field=field)


def test_bad_files_name_the_field(hist: Hist) -> None:
    def upload(data: bytes, **form: str) -> Any:
        return hist.client.post(
            URL,
            files={"file": ("f", data, "application/octet-stream")},
            data=form,
            headers=hist.service,
        )

    assert_problem(upload(b"entity_id,ts\nu1,1\n"), 422, field="/body/file")
    assert_problem(upload(b"PAR1 not really parquet"), 422, field="/body/file")
    assert_problem(upload(b""), 422, field="/body/file")
    assert_problem(upload(b"\x89\xff,timestamp\nu1,1\n"), 422, field="/body/file")
    assert_problem(upload(b"entity_id,timestamp\nu1,\n"), 422, field="/body/file/timestamp")
    assert_problem(upload(b"entity_id,timestamp\nu1,soon\n"), 422, field="/body/file/timestamp")
    assert_problem(upload(b"entity_id,timestamp\n,1\n"), 422, field="/body/file/entity_id")
    assert_problem(
        upload(b"entity_id,timestamp\nu1,1\n", features=" , "), 422, field="/body/features"
    )
    assert_problem(upload(b"entity_id,timestamp\nu1,1\n", bogus="1"), 422, field="/body/bogus")
    no_file = hist.client.post(URL, files={"format": (None, "csv")}, headers=hist.service)
    two = hist.client.post(
        URL,
        files={"file": ("f", b"entity_id,timestamp\nu1,1\n"), "more": ("g", b"x")},
        headers=hist.service,
    )
    assert_problem(two, 400)  # one file only
    assert_problem(no_file, 422, field="/body/file")
    assert_problem(
        hist.client.post(
            URL,
            content=b"entity_id,timestamp",
            headers={**hist.service, "content-type": "text/csv"},
        ),
        400,
    )


def test_too_many_rows_is_413(hist: Hist, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(historical_input, "MAX_ROWS", 3)
    rows = [{"entity_id": "u1", "timestamp": 1} for _ in range(4)]
    assert_problem(hist.post({"rows": rows}), 413)
    csv = b"entity_id,timestamp\n" + b"u1,1\n" * 4
    resp = hist.client.post(URL, files={"file": ("f.csv", csv)}, headers=hist.service)
    assert_problem(resp, 413)


def test_permissions_and_projects(hist: Hist, keys: Keys) -> None:
    rows = [{"entity_id": "u1", "timestamp": 1}]
    assert_problem(hist.client.post(URL, json={"rows": rows}, headers=hist.ingest), 403)
    keys.project("other")
    other = keys.headers([Role.SERVICE], "other")
    resp = hist.client.post(URL, json={"rows": rows}, headers=other)
    assert_problem(resp, 422, field="/body/entity_key")  # nothing deployed there
    admin = keys.headers([Role.ADMIN])
    assert_problem(
        hist.client.post(URL, json={"rows": rows}, headers=admin), 422, field="/query/project_id"
    )
    ok = hist.client.post(URL + "?project_id=hist", json={"rows": rows}, headers=admin)
    assert ok.status_code == 200, ok.text


# ---- the service on both engines ---------------------------------------------------------------


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnalyticsStore]:
    store = open_analytics(url(request.param, tmp_path))
    yield store
    store.close()


def test_the_service_on_both_engines(
    engine: AnalyticsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    analytics = engine
    monkeypatch.setattr(historical, "CHUNK_ROWS", 7)  # many chunks and batches, stitched
    monkeypatch.setattr(historical, "BATCH_ROWS", 3)
    w = World(analytics)
    rng = random.Random(9)
    for _ in range(80):
        ts = T0 + rng.randrange(0, 3 * 86400) * SECOND + rng.randrange(3) * 7
        value = rng.choice([None, 1, 2.5, 10.0, -3])
        w.add(
            ts,
            user=rng.choice(["u1", "u2", None]),
            x=value,
            k=rng.choice([None, "a", "b", 1]),
            cart=rng.choice([None, "c1", "c2"]),
        )
    w.load()
    times = sorted(e["ts"] for e in w.events)
    rows = [
        {"entity_id": rng.choice(["u1", "u2", "u3"]), "timestamp": iso(t + d), "i": i}
        for i, (t, d) in enumerate((t, d) for t in times[::5] for d in (-1, 0, 1, 31 * SECOND))
    ]
    config = ActiveConfig(P, 1, ConfigSnapshot(features=ALL), {})
    result = HistoricalService(analytics, config).training_set(
        "user_id", None, rows_table(rows), HistoricalFormat.JSON
    )
    body = orjson.loads(b"".join(result.body))
    assert [r["i"] for r in body["rows"]] == list(range(len(rows)))
    for sent, got in zip(rows, body["rows"], strict=True):
        t = us_of(sent["timestamp"])
        for spec in ALL:
            for name, value in reference_values(
                w.ev(), spec, "user_id", sent["entity_id"], t
            ).items():
                assert close(got[name], value), (sent, name, got[name], value)
