"""kill -9 of `dataintel serve` while the data lake export runs (real processes, the
embedded log, moto's S3 server): afterwards the bucket's committed files hold every
acknowledged event exactly once, the same events as the analytics store, and no file that a
marker does not list survives the restart that followed a kill."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from dataintel.export.datalake.committed import committed_files
from dataintel.export.datalake.layout import parse_file
from dataintel.storage.blob.registry import open_blob
from tests.export.lake_kit import lake_ids
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server
from tests.stream.crashkit import Client, Proc, free_port, prepare, stored_events, wait_ready


def test_kill9_during_the_data_lake_export(tmp_path: Path, s3_server: S3Server) -> None:
    url = s3_server.url(s3_server.bucket())
    env, key = prepare(
        tmp_path / "data",
        DATAINTEL_DATALAKE_URL=url,
        DATAINTEL_S3_ACCESS_KEY_ID=ACCESS_KEY,
        DATAINTEL_S3_SECRET_ACCESS_KEY=SECRET_KEY,
        DATAINTEL_DATALAKE_FLUSH_SECONDS="0.1",
        DATAINTEL_DATALAKE_BATCH_EVENTS="700",
    )
    lake = open_blob(url, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    port = free_port()
    server = Proc(["serve", "--port", str(port)], env)
    client = Client(port, key)
    rng = random.Random(5)
    kills = 0
    for _ in range(2):
        server.start()
        wait_ready(port)
        timer = threading.Timer(rng.uniform(0.5, 1.0), server.kill9)
        timer.start()
        if client.send_until_failure(max_seconds=10):
            kills += 1
        timer.join()
        server.kill9()
    assert kills >= 2
    server.start()
    wait_ready(port)
    while client.pending:
        assert not client.send_until_failure(max_seconds=5)
    client.batch = 1
    client.wait_processed(max_seconds=120)
    deadline = time.monotonic() + 60
    while sum(f.rows for f in committed_files(lake)) < len(client.acked):  # markers only
        assert time.monotonic() < deadline, "the lake did not catch up with the log"
        time.sleep(0.2)
    server.stop()

    in_lake = lake_ids(lake, "crash")
    count, stored = stored_events(tmp_path / "data")
    assert count == len(stored)
    print(f"kills={kills} acked={len(client.acked)} lake={sum(in_lake.values())} files=", end="")
    print(len(committed_files(lake)))
    assert len(client.acked) > 1000
    assert [i for i, n in in_lake.items() if n > 1] == [], "duplicates in the lake"
    assert set(in_lake) == stored, "the lake and the analytics store differ"
    assert set(in_lake) <= client.sent
    listed = {f.key for f in committed_files(lake)}
    assert {k for k in lake.list("events/") if parse_file(k)} == listed
