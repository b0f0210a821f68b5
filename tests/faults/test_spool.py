"""Ingest while the broker is away: acknowledged events wait in the API process's durable
spool (fast 2xx, `processed: false`, spool depth reported), are forwarded in order when the
broker is back, and are then stored exactly once; a full spool, or a spool whose disk is
full, answers 503 + Retry-After and keeps nothing it did not acknowledge."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.api.state import ANALYTICS
from dataintel.main import create_app
from dataintel.settings import Settings
from tests.conftest import REDIS_URL
from tests.faults.events import (
    cart_adds,
    forget_dedup_keys,
    ingest_until_refused,
    metric,
    open_shop,
)
from tests.faults.tmpfs import small_filesystem
from tests.storage.kafka_broker import KafkaBroker, running_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test's own: it is paused and resumed."""
    with running_broker(tmp_path / "kafka") as found:
        yield found


def make(make_settings: Any, broker: KafkaBroker, **extra: Any) -> Settings:
    forget_dedup_keys("shop")
    url = broker.url(f"spool-{uuid.uuid4().hex[:8]}", 1)
    return make_settings(
        eventlog_url=url + "&session_timeout_ms=2000&heartbeat_interval_ms=200",
        cache_url=REDIS_URL,
        breaker_threshold=2,
        breaker_reset_seconds=0.5,
        ingest_spool_after_seconds=1.0,
        **extra,
    )


def assert_spool_refused(refused: Any, why: str) -> None:
    """A full spool (or its full disk) refused the batch: 503 + Retry-After, saying why."""
    assert refused is not None, "the spool never filled"
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "5"
    assert why in refused.json()["detail"]


def wait_drained(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while spool_events(client) > 0:
        assert time.monotonic() < deadline, "the spool did not drain"
        time.sleep(0.2)


def spool_events(client: TestClient) -> float:
    return metric(client, "dataintel_ingest_spool_events")


def test_events_acknowledged_during_a_broker_outage_are_stored_exactly_once(
    make_settings: Any, broker: KafkaBroker
) -> None:
    app = create_app(make(make_settings, broker))
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = open_shop(app)
        ingest = keys.headers(["ingest"], "shop")
        before = cart_adds(5)
        url = "/ingest/shop/web/batch?wait=processed"
        first = client.post(url, json=before, headers=ingest)
        assert first.json()["processed"] is True, first.text

        broker.pause()
        during: list[dict[str, Any]] = []
        for _ in range(4):
            batch = cart_adds(5)
            started = time.monotonic()
            sent = client.post(url, json=batch, headers=ingest)
            assert sent.status_code == 200, sent.text
            assert time.monotonic() - started < 5  # never hangs on the dead broker
            assert (sent.json()["accepted"], sent.json()["processed"]) == (5, False)
            during += batch
        assert spool_events(client) == 20

        broker.resume()
        deadline = time.monotonic() + 60
        while spool_events(client) > 0:
            assert time.monotonic() < deadline, "the spool was not forwarded"
            time.sleep(0.2)
        after = client.post(url, json=cart_adds(1), headers=ingest)
        assert after.json()["processed"] is True, after.text

        analytics = app.state.dataintel.port(ANALYTICS)
        rows = analytics.sql(
            "SELECT event_id, count(*) AS n FROM events WHERE project_id = ? GROUP BY event_id",
            ["shop"],
        ).to_pylist()
        stored = {r["event_id"]: r["n"] for r in rows}
        sent_ids = [e["event_id"] for e in before + during]
        assert all(stored.get(i) == 1 for i in sent_ids), "an acknowledged event lost or doubled"
        assert len(stored) == 26
        service = keys.headers(["service"], "shop")
        served = client.get("/features/shop/users/ada", headers=service).json()
        assert served["values"]["carts_1h"] == 26  # the feature counted each once


def test_a_full_spool_refuses_with_503_and_keeps_only_what_it_acknowledged(
    make_settings: Any, broker: KafkaBroker
) -> None:
    app = create_app(make(make_settings, broker, ingest_spool_max_mb=0.002))  # ~2 KB
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = open_shop(app)
        ingest = keys.headers(["ingest"], "shop")
        broker.pause()
        acked, refused = ingest_until_refused(client, ingest, lambda: cart_adds(2, "grace"), 20)
        assert_spool_refused(refused, "spool is full")
        assert acked

        broker.resume()
        wait_drained(client)
        done = client.post(
            "/ingest/shop/web/batch?wait=processed", json=cart_adds(1, "grace"), headers=ingest
        )
        assert done.json()["processed"] is True
        rows = app.state.dataintel.port(ANALYTICS).sql(
            "SELECT event_id FROM events WHERE project_id = ?", ["shop"]
        )
        stored = set(rows.column("event_id").to_pylist())
        assert set(acked) <= stored
        assert len(stored) == len(acked) + 1  # the refused batch was not kept


def test_a_spool_on_a_full_disk_refuses_with_503_then_drains(
    make_settings: Any, broker: KafkaBroker, tmp_path: Path
) -> None:
    """The spool's disk fills before its bound (a 256 KiB tmpfs, a 64 MB bound): ingest
    answers 503 + Retry-After (not 500) and acknowledges nothing it could not write; with
    the broker back the spool drains although its disk is still full (the rows the log has
    are forgotten first; drained, the files are made anew, which gives the disk back) and
    ingest goes straight to the log; the next outage can spool again."""
    with small_filesystem(tmp_path / "tiny", "256k") as disk:
        settings = make(
            make_settings, broker, ingest_spool_path=disk / "spool.db", ingest_spool_max_mb=64
        )
        app = create_app(settings)
        with TestClient(app, raise_server_exceptions=False) as client:
            keys = open_shop(app)
            ingest = keys.headers(["ingest"], "shop")
            broker.pause()
            acked, refused = ingest_until_refused(
                client, ingest, lambda: cart_adds(5, note="x" * 500), 300
            )
            assert_spool_refused(refused, "disk is full")
            assert acked

            broker.resume()
            wait_drained(client)
            after = cart_adds(1)
            done = client.post("/ingest/shop/web/batch?wait=processed", json=after, headers=ingest)
            assert done.status_code == 200, done.text
            assert done.json()["processed"] is True
            rows = (
                app.state.dataintel.port(ANALYTICS)
                .sql(
                    "SELECT event_id, count(*) AS n FROM events WHERE project_id = ? "
                    "GROUP BY event_id",
                    ["shop"],
                )
                .to_pylist()
            )
            stored = {r["event_id"]: r["n"] for r in rows}
            sent_ids = acked + [e["event_id"] for e in after]
            assert all(stored.get(i) == 1 for i in sent_ids), "an acknowledged event lost"

            broker.pause()  # the next outage: the drained spool made room again
            again = client.post("/ingest/shop/web/batch", json=cart_adds(5), headers=ingest)
            assert again.status_code == 200, again.text
            assert spool_events(client) == 5
            broker.resume()
