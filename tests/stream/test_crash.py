"""kill -9 while events flow: everything that got a 2xx is in the analytics store exactly
once (real server processes, the embedded log and DuckDB)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb

from dataintel.settings import Settings
from dataintel.storage.eventlog.registry import open_eventlog
from tests.stream.crashkit import (
    Client,
    Proc,
    assert_features_match_offline,
    free_port,
    prepare,
    stored_events,
    wait_ready,
)


def test_kill9_of_the_embedded_server_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env, key = prepare(data_dir)
    port = free_port()
    server = Proc(["serve", "--port", str(port)], env)
    client = Client(port, key)
    rng = random.Random(7)
    kills = 0
    for _ in range(4):
        server.start()
        wait_ready(port)
        timer = threading.Timer(rng.uniform(0.4, 1.2), server.kill9)
        timer.start()
        if client.send_until_failure(max_seconds=20):
            kills += 1
        timer.join()
        server.kill9()
    assert kills >= 3
    # A last life: re-send what never got an answer, then wait until everything is applied.
    server.start()
    wait_ready(port)
    while client.pending:
        assert not client.send_until_failure(max_seconds=5)
    client.batch = 1
    client.wait_processed(max_seconds=180)
    server.stop()

    count, ids = stored_events(data_dir)
    print(f"kills={kills} sent={len(client.sent)} acked={len(client.acked)} stored={count}")
    assert len(client.acked) > 1000
    assert client.acked <= ids, f"{len(client.acked - ids)} acknowledged events lost"
    assert ids <= client.sent
    assert count == len(ids), f"{count - len(ids)} duplicates"
    matched = assert_features_match_offline(data_dir)
    print(f"features: {matched} online values == offline recomputation")
    assert matched == 97 * 7  # 7 values per user


def _applied(data_dir: Path) -> dict[int, int]:
    con = duckdb.connect(str(data_dir / "analytics.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT log_partition, next_offset FROM log_positions").fetchall()
    finally:
        con.close()
    return {int(p): int(o) for p, o in rows}


def _end_offsets(url: str, env: dict[str, str]) -> dict[int, int]:
    async def read() -> dict[int, int]:
        log = open_eventlog(url, Settings(data_dir=Path(env["DATAINTEL_DATA_DIR"])))
        await log.start()
        try:
            return await log.end_offsets()
        finally:
            await log.close()

    return asyncio.run(read())


def test_kill9_of_kafka_server_and_separate_worker(tmp_path: Path, kafka_broker: Any) -> None:
    """Scale-out mode: the API appends to Kafka, a separate `dataintel worker` applies to the
    analytics store. Both are SIGKILLed while events flow."""
    data_dir = tmp_path / "data"
    url = kafka_broker.url(f"crash-{uuid.uuid4().hex[:8]}", partitions=2)
    url += "&session_timeout_ms=2000&heartbeat_interval_ms=200"
    env, key = prepare(data_dir, DATAINTEL_EVENTLOG_URL=url, DATAINTEL_PROCESSOR_ENABLED="false")
    port = free_port()
    server = Proc(["serve", "--port", str(port)], env)
    worker = Proc(["worker"], env)
    client = Client(port, key)
    rng = random.Random(11)
    for round_ in range(4):
        server.start()
        worker.start()
        wait_ready(port)
        victim = server if round_ % 2 else worker
        timer = threading.Timer(rng.uniform(0.8, 1.6), victim.kill9)
        timer.start()
        client.send_until_failure(max_seconds=2.5)
        timer.join()
        server.kill9()
        worker.kill9()
    server.start()
    wait_ready(port)
    while client.pending:
        assert not client.send_until_failure(max_seconds=3)
    server.stop()

    ends = _end_offsets(url, env)
    # The analytics file is locked while the worker runs, so progress is read between lives;
    # each life is longer than the last, so a slow machine gets minutes, a fast one seconds.
    deadline = time.monotonic() + 300
    life = 3.0
    while time.monotonic() < deadline:
        worker.start()
        time.sleep(life)
        worker.stop()
        if all(_applied(data_dir).get(p, 0) >= end for p, end in ends.items()):
            break
        life = min(life * 2, 60.0)
    count, ids = stored_events(data_dir)
    print(f"sent={len(client.sent)} acked={len(client.acked)} stored={count} ends={ends}")
    assert len(client.acked) > 500
    assert client.acked <= ids, f"{len(client.acked - ids)} acknowledged events lost"
    assert ids <= client.sent
    assert count == len(ids), f"{count - len(ids)} duplicates"
    matched = assert_features_match_offline(data_dir)
    print(f"features: {matched} online values == offline recomputation")
    assert matched == 97 * 7  # 7 values per user
