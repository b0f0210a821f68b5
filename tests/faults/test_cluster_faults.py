"""Faults injected into the scale-out topology while a steady load runs through nginx.

One topology for the module (tests/faults/cluster_load.py: 2 API replicas, 1 worker, nginx,
the Tansu broker, chDB in the worker, datalake analytics on the replicas over a data lake in
S3 (moto's server); Redis and PostgreSQL behind TCP proxies, the replicas' way to S3 behind
one of its own; each replica's ingest spool on an 8 MiB tmpfs) and one load for the module:
ingest batches with unique event ids, feature reads of the loaded users, analytics overview
reads. The tests run in file order, one fault each (Redis down, PostgreSQL down, the broker
down, the broker down with the spools' disks full, the analytics engine (the lake) unreachable
for the replicas, Redis slow, the connections to Redis and PostgreSQL reset, kill -9 of a
replica, of the worker), each outage ``OUTAGE`` seconds (bench/faults.py runs the same phases
with 20 s outages); each asserts what the clients saw during the fault and that every route
answers 200 again soon after it ends. The last test stops the load and checks the data:
every acknowledged event id is stored exactly once (read back through GET /v1/export/events)
and every loaded user's served features equal the offline recomputation
(POST /v1/features/historical as of the same moment).

Not covered here, and why:
- a ClickHouse server unreachable: none can run on this machine (docs/operations.md); the
  replicas' analytics engine here is DuckDB in the process over the lake, so "unreachable"
  is the lake (S3) unreachable. tests/analytics/test_answer_cache.py covers the stale-answer
  / 503 behaviour of an analytics store that fails, in one process.
- the broker's own disk full: Tansu keeps its log in memory here (its sqlite and postgres
  engines are not compiled in: FeatureNotEnabled; its s3:// engine would put the log in
  moto, which keeps objects in memory too). The disk an API replica writes in the ingest
  path is its spool: that is the disk filled here (test_spool_disk_full);
  tests/faults/test_disk_full.py fills the embedded SQLite log's disk in one process.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI, require_service
from tests.faults.cluster_deps import empty, fill, free_bytes
from tests.faults.cluster_load import (
    PROJECT,
    FaultCluster,
    Sample,
    SteadyLoad,
    fault_cluster,
    served_and_offline,
    stored_load_events,
    summary,
    table,
)
from tests.faults.tmpfs import need_small_filesystem
from tests.storage.kafka_broker import find_tansu

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

OUTAGE = float(os.environ.get("DATAINTEL_FAULT_OUTAGE_SECONDS", "5"))
READ_BOUND = 2.0  # seconds: a feature or analytics read, whatever is down
INGEST_BOUND = 10.0  # seconds: an ingest waits ingest_spool_after_seconds (2 s) for a broker
SLOW_ANALYTICS_BOUND = 5.0  # seconds, with every Redis answer 0.2 s late
RECOVERY = 15.0  # seconds after a fault ends by which every route answers 200 again
USERS = [f"fault-user-{n}" for n in range(12)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    missing = [n for n, found in (("nginx", nginx), ("tansu", find_tansu())) if not found]
    if missing:
        message = f"not installed: {', '.join(missing)} (make install-dev)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with fault_cluster(tmp_path_factory.mktemp("faults")) as running:
        yield running


@pytest.fixture(scope="module")
def load(cluster: FaultCluster) -> Iterator[SteadyLoad]:
    with SteadyLoad(cluster.url, cluster.key, USERS) as running:
        time.sleep(3)  # warm: every route answered
        yield running


def outage(load: SteadyLoad, seconds: float = OUTAGE) -> tuple[float, float]:
    """Let the load run ``seconds`` (the caller injected the fault before); the window."""
    start = time.monotonic()
    time.sleep(seconds)
    end = time.monotonic()
    print("\n" + table(f"during ({seconds:.0f} s)", summary(load.between(start, end), end - start)))
    return start, end


def recovered(load: SteadyLoad, since: float) -> float:
    """Seconds after ``since`` until each route answered 200 twice in a row, every request
    after that answering 200 for 2 s; fails after RECOVERY."""
    deadline = since + RECOVERY
    while time.monotonic() < deadline:
        time.sleep(0.5)
        samples = load.between(since, time.monotonic())
        firsts = []
        for route in ("ingest", "features", "analytics"):
            mine = [s for s in samples if s.route == route]
            bad = [i for i, s in enumerate(mine) if s.status != 200]
            good = mine[(bad[-1] + 1) if bad else 0 :]
            if len(good) < 2:
                break
            firsts.append(good[0].started)
        else:
            settled = max(firsts)
            if time.monotonic() - settled >= 2.0:
                return settled - since
    bad_samples = [s for s in load.between(since, time.monotonic()) if s.status != 200]
    raise AssertionError(f"not recovered within {RECOVERY} s: {describe(bad_samples[-5:])}")


def describe(samples: list[Sample]) -> str:
    return "; ".join(f"{s.route} {s.status} {s.latency:.2f}s {s.detail[:120]}" for s in samples)


def assert_answers(
    samples: list[Sample], allowed: set[int], route: str, bound: float | None = None
) -> None:
    mine = [s for s in samples if s.route == route]
    assert mine, f"no {route} request in the window"
    wrong = [s for s in mine if s.status not in allowed]
    assert not wrong, f"{route}: {describe(wrong[:5])}"
    for s in mine:
        if s.status == 503:  # a deliberate refusal says when to come back
            assert s.retry_after, f"{route}: 503 without Retry-After: {s.detail[:200]}"
    bound = bound or (INGEST_BOUND if route == "ingest" else READ_BOUND)
    slow = [s for s in mine if s.latency > bound]
    assert not slow, f"{route} over {bound} s: {describe(slow[:5])}"


def ready_but_degraded(cluster: FaultCluster, failing: str) -> None:
    """Each replica stays in rotation during a shared outage (ADR 0018): /health/ready
    answers 200 `degraded` naming the dependency; /health/dependencies is the 503."""
    for replica in cluster.cluster.apis():
        base = f"http://127.0.0.1:{replica.port}"
        ready = httpx.get(f"{base}/health/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "degraded", ready.text
        assert ready.json()["checks"][failing] == "failing", ready.text
        strict = httpx.get(f"{base}/health/dependencies", timeout=5)
        assert strict.status_code == 503, strict.text
        assert failing in strict.json()["failures"], strict.text


def test_steady_state_everything_answers_200(load: SteadyLoad) -> None:
    start, end = outage(load, 2)
    for route in ("ingest", "features", "analytics"):
        assert_answers(load.between(start, end), {200}, route)


def test_redis_down(cluster: FaultCluster, load: SteadyLoad) -> None:
    """Redis (online store, analytics cache, rate-limit counters, Kafka dedup keys) gone: the
    rate limiter counts in each process instead, feature reads of users served before answer
    their last vector marked stale (others a 503 + Retry-After), ingest and analytics go on;
    never a 500 or an nginx 502 (nginx used to count 503s as replica failures, took both
    replicas out and answered 502 to everyone; deploy/nginx/nginx.conf.template no longer
    retries on 503)."""
    cluster.redis.down()
    try:
        start, end = outage(load)
        ready_but_degraded(cluster, "rate_limit")  # the limiter's Redis, as the checks name it
    finally:
        cluster.redis.up()
    during = load.between(start, end)
    for route in ("ingest", "features", "analytics"):
        assert_answers(during, {200, 503}, route)
    reads = [s for s in during if s.route == "features"]
    assert any(s.stale for s in reads), "known users' vectors come back marked stale"
    assert all(s.stale or s.status == 503 for s in reads), describe(reads[:5])
    assert any(s.status == 200 for s in during if s.route == "ingest"), "ingest goes on"
    refused = [s for s in during if s.status == 503]
    assert all("unavailable" in s.detail for s in refused)
    recovered(load, end)


def test_postgres_down(cluster: FaultCluster, load: SteadyLoad) -> None:
    """PostgreSQL (metadata) gone: feature reads keep answering 200 (credentials and config
    cached); ingest accepts while the suppression list is fresh, then 503 + Retry-After
    (fails closed, ADR 0017); analytics answers 503 naming the metadata store."""
    cluster.postgres.down()
    try:
        start, end = outage(load)
    finally:
        cluster.postgres.up()
    during = load.between(start, end)
    assert_answers(during, {200}, "features")
    assert_answers(during, {200, 503}, "ingest")
    assert_answers(during, {200, 503}, "analytics")
    later = load.between(start + 2.0, end)  # the suppression list (1 s) is stale by then
    assert [s for s in later if s.route == "ingest" and s.status == 503], "ingest fails closed"
    assert all("metadata" in s.detail for s in later if s.route == "analytics" and s.status == 503)
    recovered(load, end)


def test_broker_down(cluster: FaultCluster, load: SteadyLoad) -> None:
    """The broker gone: ingest keeps acknowledging (after waiting ingest_spool_after_seconds
    the replica keeps the events in its spool and forwards them when the broker is back) or
    503 + Retry-After when the spool is full; serving and analytics answer 200."""
    acked_before = len(load.acked)
    cluster.cluster.pause_broker()
    try:
        start, end = outage(load)
    finally:
        cluster.cluster.resume_broker()
    during = load.between(start, end)
    assert_answers(during, {200, 503}, "ingest")
    assert_answers(during, {200}, "features")
    assert_answers(during, {200}, "analytics")
    assert [s for s in during if s.route == "ingest" and s.status == 200], "spooled ingest"
    assert len(load.acked) > acked_before
    recovered(load, end)


def test_spool_disk_full(cluster: FaultCluster, load: SteadyLoad) -> None:
    """The broker down and each replica's spool filesystem full before the spool's own
    bound (a ballast file leaves 64 KiB of the 8 MiB tmpfs; the bound is 64 MB): ingest
    answers 503 + Retry-After saying the spool's disk is full (not 500), having acknowledged
    only what it wrote; serving and analytics answer 200. The broker back, the spools drain
    although their disks are still full, and ingest answers 200 again; the last test checks
    that every acknowledged event is stored once."""
    if cluster.spool_disks is None:
        need_small_filesystem("the spools are not on small filesystems (mount failed)")
    disks = cluster.spool_disks or []
    for disk in disks:
        fill(disk, leave=64 * 1024)
    acked_before = len(load.acked)
    cluster.cluster.pause_broker()
    try:
        start = time.monotonic()
        while time.monotonic() - start < OUTAGE or (
            not disk_full_refusals(load.between(start, time.monotonic()))
            and time.monotonic() - start < OUTAGE + 10
        ):
            time.sleep(0.25)
        end = time.monotonic()
        free = [free_bytes(d) for d in disks]
    finally:
        cluster.cluster.resume_broker()
    print("\n" + table("spool disk full", summary(load.between(start, end), end - start)))
    print(f"free bytes on the spool disks at the end: {free}")
    during = load.between(start, end)
    assert_answers(during, {200, 503}, "ingest")
    assert_answers(during, {200}, "features")
    assert_answers(during, {200}, "analytics")
    assert disk_full_refusals(during), "the spools' disks never filled"
    assert len(load.acked) > acked_before, "ingest spooled until the disks were full"
    recovered(load, end)  # drained although the disks are still full
    for disk in disks:
        empty(disk)


def disk_full_refusals(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if s.status == 503 and "disk is full" in s.detail]


def test_analytics_unreachable(cluster: FaultCluster, load: SteadyLoad) -> None:
    """The replicas' way to the data lake (S3) gone, the worker still writing it: each
    replica answers analytics from what it has loaded, 200 marked stale (X-Stale, Age) within
    the read bound (a read waits 1 s at most for a look at the lake), never 500/502; ingest
    and serving answer 200. Back: each replica catches up (the events acknowledged during
    the outage are counted) and answers fresh again."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    acked_before = set(load.acked)
    cluster.lake.down()
    try:
        start, end = outage(load)
        acked_during = set(load.acked) - acked_before
        ready_but_degraded(cluster, "analytics")
        for replica in cluster.cluster.apis():  # exports from the same data say so too
            _, stale = replica_view(cluster, replica.port, since)
            assert stale == (True, True), f"{replica.name}: overview, export marked {stale}"
    finally:
        cluster.lake.up()
    during = load.between(start, end)
    assert_answers(during, {200}, "ingest")
    assert_answers(during, {200}, "features")
    assert_answers(during, {200, 503}, "analytics")
    reads = [s for s in during if s.route == "analytics"]
    assert all("analytics" in s.detail for s in reads if s.status == 503), describe(reads[:5])
    settled = [s for s in reads if s.started > start + 2.5]  # each replica looked and failed
    assert settled, "no analytics read in the outage"
    assert all(s.stale and s.age is not None for s in settled if s.status == 200), describe(
        [s for s in settled if not s.stale][:5]
    )
    assert acked_during, "ingest went on"
    recovered(load, end)
    deadline = time.monotonic() + RECOVERY
    for replica in cluster.cluster.apis():
        while True:
            seen, stale = replica_view(cluster, replica.port, since)
            if (acked_during <= seen and not any(stale)) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert stale == (False, False), f"{replica.name} still answers stale: {stale}"
        missing = len(acked_during - seen)
        assert not missing, f"{replica.name}: {missing} events of the outage not visible"


def replica_view(
    cluster: FaultCluster, port: int, since: datetime
) -> tuple[set[str], tuple[bool, bool]]:
    """One replica asked directly (not through nginx): the load's event ids since ``since``
    it has, and whether its analytics answer and its export are marked stale."""
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {cluster.key}"},
        timeout=READ_BOUND + 5,
    )
    with client:
        resp = client.get("/v1/analytics/overview?interval=day")
        assert resp.status_code == 200, resp.text
        stale = resp.headers.get("x-stale") == "true"
        params = {"event": "cart_add", "format": "ndjson", "start": since.isoformat()}
        exported = client.get("/v1/export/events", params=params)
        assert exported.status_code == 200, exported.text
        export_stale = exported.headers.get("x-stale") == "true"
        assert export_stale == ("age" in exported.headers), dict(exported.headers)
    lines = (json.loads(line) for line in exported.text.splitlines() if line.strip())
    return {str(row["event_id"]) for row in lines}, (stale, export_stale)


def test_redis_slow(cluster: FaultCluster, load: SteadyLoad) -> None:
    """Every Redis answer 0.2 s late: requests slow down but answer (200, or 503 +
    Retry-After), never 500/502, reads within the read bound."""
    cluster.redis.delay = 0.2
    try:
        start, end = outage(load)
    finally:
        cluster.redis.delay = 0.0
    during = load.between(start, end)
    assert_answers(during, {200, 503}, "ingest")
    assert_answers(during, {200, 503}, "features")  # serving_timeout_seconds (1 s) bounds it
    # The analytics answer cache and the rate limiter have no timeout of their own: each
    # Redis round trip of the request adds the delay.
    assert_answers(during, {200, 503}, "analytics", SLOW_ANALYTICS_BOUND)
    recovered(load, end)


def test_connections_to_redis_and_postgres_dropped(cluster: FaultCluster, load: SteadyLoad) -> None:
    """Every open connection to Redis and to PostgreSQL reset twice a second (both stay up):
    the clients' pools reconnect; requests answer 200 or 503 + Retry-After, never 500/502."""
    start = time.monotonic()
    while time.monotonic() - start < OUTAGE:
        cluster.redis.drop()
        cluster.postgres.drop()
        time.sleep(0.5)
    end = time.monotonic()
    print("\n" + table("connections dropped", summary(load.between(start, end), end - start)))
    during = load.between(start, end)
    for route in ("ingest", "features", "analytics"):
        assert_answers(during, {200, 503}, route)
    recovered(load, end)


def test_kill_9_of_an_api_replica(cluster: FaultCluster, load: SteadyLoad) -> None:
    """kill -9 of api-1: feature and analytics GETs keep answering 200 through nginx (a
    refused connection goes to the other replica); an ingest POST in flight on the dead
    replica may get nginx's 502 (retry it: its events carry their ids). Restarted on the
    same port, it rejoins."""
    cluster.cluster.kill9("api-1")
    start, end = outage(load)
    during = load.between(start, end)
    assert_answers(during, {200}, "features")
    assert_answers(during, {200}, "analytics")
    assert_answers(during, {200, 502}, "ingest")
    cluster.cluster.restart("api-1")
    recovered(load, time.monotonic())
    status = httpx.get(f"http://127.0.0.1:{cluster.cluster.process('api-1').port}/health/ready")
    assert status.status_code == 200


def test_kill_9_of_the_worker(cluster: FaultCluster, load: SteadyLoad) -> None:
    """kill -9 of the worker: ingest keeps acknowledging (the events wait in the broker),
    serving answers (the last applied values); after the restart processing resumes from
    the committed offsets (checked by the last test: nothing lost, nothing applied twice)."""
    acked_before = len(load.acked)
    cluster.cluster.kill9("worker-1")
    start, end = outage(load)
    during = load.between(start, end)
    assert_answers(during, {200}, "ingest")
    assert_answers(during, {200}, "features")
    assert_answers(during, {200}, "analytics")
    assert len(load.acked) > acked_before
    cluster.cluster.restart("worker-1")
    recovered(load, time.monotonic())


def test_every_acknowledged_event_stored_once_and_features_equal_offline(
    cluster: FaultCluster, load: SteadyLoad
) -> None:
    load.stop()
    assert load.rejected == 0
    assert len(load.acked) > 100
    deadline = time.monotonic() + 90
    while True:  # the worker catches up, the lake flushes (1 s), the replicas look again
        stored = stored_load_events(cluster.url, cluster.key)
        if load.acked <= stored.keys() or time.monotonic() > deadline:
            break
        time.sleep(2)
    missing = load.acked - stored.keys()
    assert not missing, f"{len(missing)} acknowledged events not stored, e.g. {sorted(missing)[:3]}"
    twice = {k: v for k, v in stored.items() if v != 1}
    assert not twice, f"stored more than once: {list(twice.items())[:5]}"
    assert stored.keys() <= load.sent  # nothing that was never sent
    # The online state is the worker's other sink: it may still be applying the last batches
    # (after the worker's restart, or behind a Redis outage) when the analytics side is done.
    deadline = time.monotonic() + 30
    served, offline = served_and_offline(cluster.url, cluster.key, USERS)
    while served != offline and time.monotonic() < deadline:
        time.sleep(1)
        served, offline = served_and_offline(cluster.url, cluster.key, USERS)
    print(f"\nserved == offline after {30 - (deadline - time.monotonic()):.1f} s")
    differ = {u: (served[u], offline.get(u)) for u in served if served[u] != offline.get(u)}
    seen = []
    if differ:  # what each replica answers for them, stale mark included
        for replica in cluster.cluster.apis():
            for user in list(differ)[:2]:
                got = httpx.get(
                    f"http://127.0.0.1:{replica.port}/features/{PROJECT}/users/{user}",
                    headers={"Authorization": f"Bearer {cluster.key}"},
                    timeout=10,
                ).json()
                seen.append((replica.name, user, got.get("stale"), got.get("stale_age_seconds")))
    assert served == offline, f"served != offline for {len(differ)} users: {differ}; {seen}"
    counts = {u: served[u]["cart_adds_1h"] for u in USERS}
    assert sum(counts.values()) == len(stored)  # every stored event counted, once
