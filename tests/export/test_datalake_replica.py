"""The data lake replica (analytics_url=datalake:// on an API replica): DuckDB in the
process over the committed files of a real S3 API (moto), answering the analytics port's
reads; new commits show after refresh_seconds, rewrites reload, writes raise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dataintel.export.datalake.erase import erase_subject
from dataintel.export.datalake.replica import DataLakeReplica, ReadOnlyReplica
from dataintel.export.datalake.writer import write_batch
from dataintel.model.subject import Subject
from dataintel.storage.analytics.port import EventQuery
from dataintel.storage.blob.s3 import S3BlobStore
from tests.export.lake_kit import entries
from tests.s3_server import S3Server


@pytest.fixture
def lake(s3_server: S3Server) -> S3BlobStore:
    return s3_server.store()


def _count(replica: DataLakeReplica, project_id: str = "shop") -> int:
    table = replica.sql("SELECT count(*) AS n FROM events WHERE project_id = ?", [project_id])
    return int(table.column("n")[0].as_py())


def test_reads_follow_the_lake_commits(lake: S3BlobStore) -> None:
    write_batch(lake, 0, entries(0, range(0, 30)))
    replica = DataLakeReplica(lake, refresh_seconds=60)
    try:
        assert _count(replica) == 30
        assert replica.positions() == {0: 30}
        write_batch(lake, 0, entries(0, range(30, 50)))
        write_batch(lake, 1, entries(1, range(0, 10), project_id="other"))
        assert _count(replica) == 30  # looked less than refresh_seconds ago
        replica.refresh(force=True)  # what the next read does once refresh_seconds passed
        assert _count(replica) == 50
        assert _count(replica, "other") == 10
        assert replica.positions() == {0: 50, 1: 10}
        counts = replica.count_events("shop")
        assert sum(c.count for c in counts) == 50
        rows = list(replica.scan_events(EventQuery(project_id="other", batch_rows=4)))
        assert sum(b.num_rows for b in rows) == 10
        first = replica.sql("SELECT ts, properties FROM events WHERE event_id = 'e1'")
        assert first.column("ts")[0].as_py().replace(tzinfo=UTC) > datetime(2026, 12, 7, tzinfo=UTC)
    finally:
        replica.close()


def test_a_rewrite_reloads_and_moves_the_watermark(lake: S3BlobStore) -> None:
    write_batch(lake, 0, entries(0, range(0, 40)))
    replica = DataLakeReplica(lake, refresh_seconds=0)
    try:
        assert _count(replica) == 40
        erasures = replica.erasures()
        erase_subject(lake, "shop", {"u1"}, set())
        assert _count(replica) == 40 - 8  # e1, e6, ... e36: user u1
        assert replica.erasures() != erasures  # cached analytics answers are recomputed
        fresh = DataLakeReplica(lake)
        assert fresh.erasures() == replica.erasures()  # the same in every replica
        fresh.close()
    finally:
        replica.close()


def test_writes_are_the_workers(lake: S3BlobStore) -> None:
    replica = DataLakeReplica(lake)
    try:
        replica.ping()
        with pytest.raises(ReadOnlyReplica):
            replica.apply(entries(0, range(3)))
        with pytest.raises(ReadOnlyReplica):
            replica.erase(Subject("shop", "u1", frozenset(), frozenset()))
    finally:
        replica.close()
