"""The scale-out topology with its dependencies behind fault switches, and a steady load of
the business flow through nginx: shared by tests/faults/test_cluster_faults.py (short
outages), bench/faults.py (20 s outages) and bench/cluster_load.py (the load test).

``fault_cluster(workdir)`` starts scripts/cluster.py's topology (2 API replicas, 1 worker,
nginx, the Tansu broker, chDB in the worker, datalake analytics on the replicas) with a
``TcpProxy`` between every process and Redis and one between every process and PostgreSQL
(taking a proxy down is the outage; the machine's servers keep running for everyone else);
the data lake is in S3 (moto's server, tests/faults/cluster_deps.py): the worker writes it
directly, the replicas read it through a ``TcpProxy`` of their own (down: the analytics
engine unreachable for them); each replica's ingest spool is on a small tmpfs of its own
(``spool_disks``, None when one could not be mounted). The broker is paused and resumed by
signal (its client-facing listener closes). Processes are killed with SIGKILL and restarted
with the same command and port.

``SteadyLoad`` runs paced client threads through nginx: ingest batches of ``cart_add``
events with unique ids for a fixed set of users (every id acknowledged ``accepted`` is
recorded), feature reads of those users and analytics overview reads; each request is
recorded with its route, status, latency, Retry-After and stale marker (``stale`` in a
vector, ``X-Stale`` and ``Age`` on analytics).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from tests.faults.cluster_deps import S3_ENV, SPOOL_BOUND_MB, s3_server, spool_disks
from tests.faults.proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "demo-shop"
# Not the Redis dbs the other suites use (0, 11, 12, 13, 15): the cluster empties its db.
REDIS_DB = 9
# Fault runs: an open breaker lets a call through again after 1 s (default 30 s), so a
# recovered dependency is used again within the test's time.
FAULT_ENV = {"DATAINTEL_BREAKER_RESET_SECONDS": "1"}


def orchestrator() -> ModuleType:
    """scripts/cluster.py as a module (it is a script, not a package)."""
    if "cluster" in sys.modules:
        return sys.modules["cluster"]
    spec = importlib.util.spec_from_file_location("cluster", ROOT / "scripts" / "cluster.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cluster"] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


@dataclass
class FaultCluster:
    cluster: Any  # scripts/cluster.py's Cluster
    redis: TcpProxy
    postgres: TcpProxy
    lake: TcpProxy  # the replicas' way to the data lake (S3)
    spool_disks: list[Path] | None  # each replica's spool filesystem; None: not mounted

    @property
    def url(self) -> str:
        return str(self.cluster.url)

    @property
    def key(self) -> str:
        return str(self.cluster.key)


@contextlib.contextmanager
def fault_cluster(
    workdir: Path, extra_env: dict[str, str] | None = None, api_replicas: int = 2
) -> Iterator[FaultCluster]:
    with (
        s3_server(workdir / "s3.log") as s3,
        spool_disks(workdir / "spools", api_replicas) as no_disks,
    ):
        bucket = s3.bucket()
        lake = TcpProxy(("127.0.0.1", int(s3.endpoint.rpartition(":")[2])))
        redis = TcpProxy(("127.0.0.1", 6379))
        postgres = TcpProxy(("127.0.0.1", 5432))
        via_proxy = f"s3://{bucket}/lake?endpoint=http://{lake.address}&region=us-east-1"
        cluster = orchestrator().Cluster(
            workdir,
            api_replicas=api_replicas,
            postgres=f"postgresql://postgres@{postgres.address}/test",
            redis=f"redis://{redis.address}/{REDIS_DB}",
            extra_env={**FAULT_ENV, **S3_ENV, **(extra_env or {})},
            api_env={
                "DATAINTEL_DATALAKE_URL": via_proxy,
                "DATAINTEL_INGEST_SPOOL_MAX_MB": SPOOL_BOUND_MB,
            },
            datalake_url=s3.url(bucket),
            spool_dir=workdir / "spools",
        )
        disks = None
        if no_disks is None:
            disks = [workdir / "spools" / f"api-{n + 1}" for n in range(api_replicas)]
        try:
            with cluster:
                yield FaultCluster(cluster, redis, postgres, lake, disks)
        finally:
            for proxy in (redis, postgres, lake):
                proxy.close()


# --- the load ----------------------------------------------------------------------------


@dataclass
class Sample:
    route: str  # ingest | features | analytics
    status: int  # 0: no HTTP answer (connection error, client timeout)
    started: float  # monotonic
    latency: float
    stale: bool = False
    retry_after: str | None = None
    detail: str = ""
    age: str | None = None  # the Age header of a stale analytics answer


@dataclass
class SteadyLoad:
    """Paced client threads through nginx (each request waits for its answer, then the
    thread sleeps ``pause`` seconds): ``ingest_threads`` x ingest, ``feature_threads`` x
    feature reads, ``analytics_threads`` x overview reads."""

    url: str
    key: str
    users: list[str]
    batch: int = 5
    pause: float = 0.05
    ingest_threads: int = 1
    feature_threads: int = 1
    analytics_threads: int = 1
    timeout: float = 15.0
    samples: list[Sample] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    rejected: int = 0  # events a 200 answered `rejected` (the load's events are all valid)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> SteadyLoad:
        self._stop.clear()
        for kind, count in (
            ("ingest", self.ingest_threads),
            ("features", self.feature_threads),
            ("analytics", self.analytics_threads),
        ):
            for n in range(count):
                thread = threading.Thread(target=self._run, args=(kind, n), daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        self._threads.clear()

    def __enter__(self) -> SteadyLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def between(self, start: float, end: float, route: str | None = None) -> list[Sample]:
        with self._lock:
            return [
                s
                for s in self.samples
                if start <= s.started < end and (route is None or s.route == route)
            ]

    def _run(self, kind: str, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout) as client:
            i = n
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    sample = getattr(self, f"_{kind}")(client, i)
                except httpx.HTTPError as exc:
                    sample = Sample(kind, 0, started, 0.0, detail=repr(exc))
                sample.started = started
                sample.latency = time.monotonic() - started
                with self._lock:
                    self.samples.append(sample)
                i += 1
                self._stop.wait(self.pause)

    def _ingest(self, client: httpx.Client, i: int) -> Sample:
        now = datetime.now(UTC).isoformat()
        events = []
        for k in range(self.batch):
            user = self.users[(i * self.batch + k) % len(self.users)]
            event_id = f"load-{uuid.uuid4().hex}"
            events.append(
                {
                    "event_id": event_id,
                    "event": "cart_add",
                    "timestamp": now,
                    "user_id": user,
                    "session_id": f"s-{user}",
                    "cart_id": f"cart-{user}",
                    "properties": {
                        "product_id": "p1",
                        "price": 2.5,
                        "quantity": 1,
                        "currency": "USD",
                    },
                }
            )
        with self._lock:
            self.sent.update(e["event_id"] for e in events)
        resp = client.post(f"/ingest/{PROJECT}/web/batch", json=events)
        sample = _sample("ingest", resp)
        if resp.status_code == 200:
            items = resp.json()["items"]
            accepted = {i["event_id"] for i in items if i["status"] == "accepted"}
            with self._lock:
                self.acked.update(accepted)
                self.rejected += sum(i["status"] == "rejected" for i in items)
        return sample

    def _features(self, client: httpx.Client, i: int) -> Sample:
        resp = client.get(f"/features/{PROJECT}/users/{self.users[i % len(self.users)]}")
        sample = _sample("features", resp)
        if resp.status_code == 200:
            sample.stale = bool(resp.json().get("stale"))
        return sample

    def _analytics(self, client: httpx.Client, i: int) -> Sample:
        resp = client.get("/v1/analytics/overview?interval=day")
        sample = _sample("analytics", resp)
        sample.stale = resp.headers.get("x-stale") == "true"
        sample.age = resp.headers.get("age")
        return sample


def _sample(route: str, resp: httpx.Response) -> Sample:
    detail = "" if resp.status_code == 200 else resp.text[:300]
    return Sample(route, resp.status_code, 0.0, 0.0, False, resp.headers.get("retry-after"), detail)


# --- the figures -------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def summary(samples: list[Sample], seconds: float) -> dict[str, Any]:
    """Per route: requests, throughput, p50/p99 of the answered ones (ms), error rate
    (no answer or 5xx), stale share, status counts."""
    out: dict[str, Any] = {}
    for route in sorted({s.route for s in samples}):
        mine = [s for s in samples if s.route == route]
        latencies = [s.latency * 1000 for s in mine if s.status]
        errors = [s for s in mine if s.status == 0 or s.status >= 500]
        statuses: dict[str, int] = {}
        for s in mine:
            statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
        out[route] = {
            "requests": len(mine),
            "per_second": round(len(mine) / seconds, 1),
            "p50_ms": round(percentile(latencies, 0.50), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1),
            "max_ms": round(max(latencies, default=float("nan")), 1),
            "error_rate": round(len(errors) / len(mine), 4) if mine else 0.0,
            "stale": sum(s.stale for s in mine),
            "statuses": statuses,
        }
    return out


def table(title: str, figures: dict[str, Any]) -> str:
    lines = [
        title,
        f"{'route':<10} {'n':>6} {'/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'err':>7} {'stale':>6}  statuses",
    ]
    for route, f in figures.items():
        lines.append(
            f"{route:<10} {f['requests']:>6} {f['per_second']:>7} {f['p50_ms']:>8} "
            f"{f['p99_ms']:>8} {f['max_ms']:>8} {f['error_rate']:>7.2%} {f['stale']:>6}  "
            f"{json.dumps(f['statuses'])}"
        )
    return "\n".join(lines)


# --- the end checks ----------------------------------------------------------------------


def stored_load_events(url: str, key: str) -> dict[str, int]:
    """How many times each ``load-*`` event id is in the analytics store, read through the
    API (GET /v1/export/events: a replica's datalake view of the worker's chDB store)."""
    counts: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        resp = client.get("/v1/export/events", params={"event": "cart_add", "format": "ndjson"})
        resp.raise_for_status()
        for line in resp.text.splitlines():
            if not line.strip():
                continue
            event_id = str(json.loads(line)["event_id"])
            if event_id.startswith("load-"):
                counts[event_id] = counts.get(event_id, 0) + 1
    return counts


COMPARED = ["cart_adds_1h", "cart_adds_24h", "cart_adds_7d", "cart_adds_30d"]


def served_and_offline(url: str, key: str, users: list[str]) -> tuple[dict[str, Any], ...]:
    """Each user's served values (GET /features/...) and the offline recomputation
    (POST /v1/features/historical as of the same moment), for the compared values."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        as_of = datetime.now(UTC).isoformat()
        served = {}
        for user in users:
            resp = client.get(f"/features/{PROJECT}/users/{user}")
            resp.raise_for_status()
            served[user] = {n: resp.json()["values"].get(n) for n in COMPARED}
        body = {
            "features": COMPARED,
            "rows": [{"entity_id": u, "timestamp": as_of} for u in users],
        }
        resp = client.post("/v1/features/historical", json=body)
        resp.raise_for_status()
        rows = resp.json()
        rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
        offline = {str(r["entity_id"]): {n: r.get(n) for n in COMPARED} for r in rows}
    return served, offline
