"""The embedded event log's disk fills up (a 1 MB tmpfs made for the test): ingest answers
503 — never a 2xx for an event it could not write — while the rest of the service answers;
once there is room again, ingest accepts, and every event acknowledged before, during and
after is stored exactly once."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.api.state import ANALYTICS
from dataintel.main import create_app
from tests.faults.events import cart_adds, ingest_until_refused, open_shop
from tests.faults.tmpfs import small_filesystem


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    with small_filesystem(tmp_path / "tiny", "1m") as where:
        yield where


def test_a_full_log_disk_refuses_ingest_and_loses_nothing_acknowledged(
    make_settings: Any, tiny_disk: Path
) -> None:
    settings = make_settings(eventlog_url=f"sqlite:///{tiny_disk / 'log.db'}")
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = open_shop(app)
        ingest = keys.headers(["ingest"], "shop")
        acked, refused = ingest_until_refused(
            client, ingest, lambda: cart_adds(20, note="x" * 200), 200
        )
        assert refused is not None, "the 1 MB disk never filled"
        assert refused.status_code == 503, refused.text
        assert client.get("/health/live").status_code == 200

        grown = subprocess.run(
            ["mount", "-o", "remount,size=64m", str(tiny_disk)], capture_output=True
        )
        assert grown.returncode == 0, grown.stderr
        after = cart_adds(5)
        sent = client.post("/ingest/shop/web/batch?wait=processed", json=after, headers=ingest)
        assert sent.status_code == 200, sent.text
        assert sent.json()["processed"] is True
        acked += [e["event_id"] for e in after]

        rows = app.state.dataintel.port(ANALYTICS).sql(
            "SELECT event_id, count(*) AS n FROM events WHERE project_id = ? GROUP BY event_id",
            ["shop"],
        )
        ids, counts = rows.column("event_id").to_pylist(), rows.column("n").to_pylist()
        stored = dict(zip(ids, counts, strict=True))
        assert set(acked) <= set(stored), "an acknowledged event was lost"
        assert all(n == 1 for n in stored.values())
