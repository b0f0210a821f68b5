"""The data lake replica (analytics_url=datalake:// on an API replica): DuckDB in the
process over the committed files of a real S3 API (moto), answering the analytics port's
reads; new commits show after refresh_seconds, rewrites reload, writes raise; with the lake
unreachable it answers from memory, marked stale, and catches up when the lake is back."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from dataintel.analytics.cache import AnalyticsCache, Fresh, RequestKey, fresh, minute_now
from dataintel.export.datalake.erase import erase_subject
from dataintel.export.datalake.replica import LOOK_WAIT_SECONDS, DataLakeReplica, ReadOnlyReplica
from dataintel.export.datalake.writer import write_batch
from dataintel.model.subject import Subject
from dataintel.storage.analytics.port import EventQuery
from dataintel.storage.blob.s3 import S3BlobStore, S3Location
from dataintel.storage.cache import MemoryCache
from dataintel.storage.errors import StorageError
from tests.export.lake_kit import entries
from tests.faults.proxy import proxy_to
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server


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


class _Total(BaseModel):
    events: int


def test_an_unreachable_lake_answers_from_memory_marked_stale_then_catches_up(
    s3_server: S3Server,
) -> None:
    """The replica reaches S3 through a proxy; with the proxy down a read answers within
    the look wait from what is loaded, marked stale (the analytics cache passes the age
    on: X-Stale + Age); with the proxy back the next look catches up and the mark goes."""
    direct = s3_server.store()
    write_batch(direct, 0, entries(0, range(0, 20)))
    with proxy_to("127.0.0.1", int(s3_server.endpoint.rpartition(":")[2])) as proxy:
        url = direct.url.removeprefix("s3://").partition("/")
        location = S3Location(url[0], url[2], f"http://{proxy.address}", "us-east-1")
        replica = DataLakeReplica(S3BlobStore(location, ACCESS_KEY, SECRET_KEY), 0.2)
        cache = AnalyticsCache(MemoryCache())
        request = RequestKey("shop", "total", "", None)

        def total() -> Fresh:
            return fresh(_Total(events=_count(replica)), minute_now(), reads_clock=False)

        try:
            assert cache.answer(replica, request, total).stale_age_s is None
            proxy.down()
            write_batch(direct, 0, entries(0, range(20, 30)))  # the worker reaches S3
            time.sleep(1.2)  # the replica's data ages
            started = time.monotonic()
            answered = cache.answer(replica, request, total)
            assert time.monotonic() - started < LOOK_WAIT_SECONDS + 0.5
            assert answered.stale_age_s is not None
            assert answered.stale_age_s >= 1
            assert _Total.model_validate_json(answered.body).events == 20
            assert cache.lookup(replica, request) is None  # the fast path leaves it to the route
            proxy.up()
            deadline = time.monotonic() + 10
            while replica.staleness() is not None and time.monotonic() < deadline:
                time.sleep(0.3)
                replica.refresh()
            answered = cache.answer(replica, request, total)
            assert answered.stale_age_s is None
            assert _Total.model_validate_json(answered.body).events == 30
        finally:
            replica.close()


def test_a_replica_starts_while_the_lake_is_unreachable_and_loads_once_it_answers(
    s3_server: S3Server,
) -> None:
    """Ingest and serving do not need the lake, so the process starts; until a look
    succeeds there is nothing to answer from, so reads fail as an outage (the breakers'
    kind: a 503 naming analytics), fast, and a read after refresh_seconds looks again."""
    direct = s3_server.store()
    write_batch(direct, 0, entries(0, range(0, 12)))
    with proxy_to("127.0.0.1", int(s3_server.endpoint.rpartition(":")[2])) as proxy:
        url = direct.url.removeprefix("s3://").partition("/")
        location = S3Location(url[0], url[2], f"http://{proxy.address}", "us-east-1")
        proxy.down()
        replica = DataLakeReplica(S3BlobStore(location, ACCESS_KEY, SECRET_KEY), 0.5)
        try:
            for _ in range(2):
                started = time.monotonic()
                with pytest.raises(ConnectionError, match="has not been read"):
                    _count(replica)
                assert time.monotonic() - started < LOOK_WAIT_SECONDS + 0.5
            with pytest.raises(StorageError, match="NETWORK_CONNECTION"):
                replica.ping()  # /health/ready says analytics is failing
            proxy.up()
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert _count(replica) == 12
                    break
                except ConnectionError:
                    assert time.monotonic() < deadline, "the replica never loaded the lake"
                    time.sleep(0.2)
            assert replica.staleness() is None
            assert replica.positions() == {0: 12}
        finally:
            replica.close()
