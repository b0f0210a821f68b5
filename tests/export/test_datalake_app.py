"""The data lake and custom exports to S3 on the embedded stack (ingest → SQLite log →
processor and data lake export → moto's S3 server)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from dataintel.export.datalake.committed import committed_files, read_events
from dataintel.export.service import EXPORT_SCHEMA
from dataintel.settings import Settings
from dataintel.storage.blob.port import BlobStore
from dataintel.storage.blob.registry import open_blob
from tests.analytics.conftest import Platform
from tests.conftest import assert_problem
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server

START = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(days=3)


@pytest.fixture
def lake_url(s3_server: S3Server) -> str:
    return s3_server.url(s3_server.bucket())


@pytest.fixture
def settings(make_settings: Callable[..., Settings], lake_url: str) -> Settings:
    return make_settings(
        datalake_url=lake_url,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY,
        datalake_flush_seconds=0.1,
    )


@pytest.fixture
def lake(lake_url: str) -> BlobStore:
    return open_blob(lake_url, access_key=ACCESS_KEY, secret_key=SECRET_KEY)


def events(n: int, marker: str) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{marker}{i}",
            "event": "cart_add",
            "timestamp": (START + timedelta(minutes=7 * i)).isoformat(),
            "user_id": f"u{i % 4}",
            "cart_id": f"c{i % 3}",
            "properties": {"product_id": f"p{i % 5}", "price": float(i)},
        }
        for i in range(n)
    ]


def test_every_event_reaches_the_lake_as_the_export_shows_it(
    platform: Platform, lake: BlobStore
) -> None:
    shop = platform.project("shop")
    platform.project("rival")
    platform.send("shop", events(60, "s"))
    platform.send("rival", events(25, "r"))
    deadline = time.monotonic() + 20
    while sum(f.rows for f in committed_files(lake)) < 85:
        assert time.monotonic() < deadline, "the lake did not catch up"
        time.sleep(0.05)
    exported = platform.client.get(
        "/v1/export/events", headers={**shop, "Accept": "application/vnd.apache.parquet"}
    )
    assert exported.status_code == 200, exported.text
    want = pq.read_table(io.BytesIO(exported.content))
    got = read_events(lake, "shop").sort_by([("timestamp", "ascending"), ("event_id", "ascending")])
    assert got.schema == EXPORT_SCHEMA
    assert got.to_pylist() == want.to_pylist()
    hours = {f.hour for f in committed_files(lake, "shop")}
    assert hours == {(START + timedelta(minutes=7 * i)).strftime("%Y-%m-%dT%H") for i in range(60)}
    assert read_events(lake, "rival").num_rows == 25


def test_a_custom_export_to_s3_is_a_job_writing_files_per_date(
    platform: Platform, lake: BlobStore
) -> None:
    shop = platform.project("shop")
    platform.send("shop", events(600, "s"))
    doc = {
        "events": ["cart_add"],
        "fields": ["event_id", "timestamp", "user_id", "properties.price"],
        "destination": {"type": "s3", "prefix": "weekly/q4"},
    }
    job = platform.client.post("/v1/export/custom", json=doc, headers=shop)
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 30
    while (done := platform.client.get(job.headers["location"], headers=shop)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert done.status_code == 200, done.text
    base = f"exports/project_id=shop/weekly/q4/{job.json()['id']}"
    keys = lake.list(base + "/")
    dates = sorted({(START + timedelta(minutes=7 * i)).date().isoformat() for i in range(600)})
    assert keys == [f"{base}/_manifest.json"] + [
        f"{base}/date={d}/part-00000.parquet" for d in dates
    ]
    manifest = orjson.loads(lake.get(f"{base}/_manifest.json"))
    assert manifest["rows"] == 600
    assert [f["date"] for f in manifest["files"]] == dates
    ids = []
    for key, date in zip(keys[1:], dates, strict=True):
        rows = pq.read_table(io.BytesIO(lake.get(key))).to_pylist()
        assert {r["timestamp"].date().isoformat() for r in rows} == {date}
        ids += [r["event_id"] for r in rows]
    assert sorted(ids) == sorted(f"s{i}" for i in range(600))
    assert f"s3://{lake.url.removeprefix('s3://')}/{keys[1]}" in done.text  # the listing
    # Audited twice: the job asked for, and what it delivered to the bucket (rows, files).
    officer = platform.keys.headers(["compliance"], "shop")
    trail = platform.client.get("/v1/audit?limit=1000", headers=officer).json()["entries"]
    [delivered] = [e for e in trail if e["action"] == "export_delivered"]
    assert delivered["target"] == job.json()["id"]
    assert delivered["detail"]["rows"] == 600
    assert delivered["detail"]["files"] == len(dates)
    assert "export_custom_job" in {e["action"] for e in trail}


@pytest.mark.parametrize(
    ("destination", "field"),
    [
        ({"type": "s3", "prefix": "../escape"}, "prefix"),
        ({"type": "s3", "endpoint": "http://evil:9000"}, "endpoint"),
        ({"type": "ftp"}, "destination"),
    ],
)
def test_bad_destinations_are_422_naming_the_field(
    platform: Platform, destination: dict[str, Any], field: str
) -> None:
    shop = platform.project("shop")
    resp = platform.client.post(
        "/v1/export/custom", json={"destination": destination}, headers=shop
    )
    assert_problem(resp, 422, field=field)


def test_s3_needs_a_date_column(platform: Platform) -> None:
    shop = platform.project("shop")
    doc = {"fields": ["event_id"], "destination": {"type": "s3"}}
    resp = platform.client.post("/v1/export/custom", json=doc, headers=shop)
    assert_problem(resp, 422, field="destination")
