"""The scale-out topology for real, through nginx: 2 API replicas (processor off) + 1 worker
+ a Kafka-protocol broker + PostgreSQL + Redis, analytics from the worker's chDB store via
the data lake it writes (each replica's in-process DuckDB over the committed files).
Started by scripts/cluster.py, the orchestrator behind `make cluster`."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dataintel.config.declarative.demo_events import demo_events, send_demo_events
from tests.conftest import IN_CI, require_service
from tests.storage.kafka_broker import find_tansu

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _orchestrator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cluster", ROOT / "scripts" / "cluster.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cluster"] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    missing = [n for n, found in (("nginx", _nginx()), ("tansu", find_tansu())) if not found]
    if missing:
        message = f"not installed: {', '.join(missing)} (make install-dev)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with _orchestrator().Cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


def _nginx() -> str | None:
    debian = Path("/usr/sbin/nginx")
    return shutil.which("nginx") or (str(debian) if debian.exists() else None)


def request(url: str, key: str, body: object = None) -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def served_by(cluster: Any, request_id: str) -> list[str]:
    return [api.name for api in cluster.apis() if request_id in api.log_path.read_text()]


def test_ingest_features_analytics_spread_and_failover(cluster: Any) -> None:
    events = demo_events()[:60]
    users = sorted({str(e["user_id"]) for e in events if e.get("user_id")})
    # Ingest through nginx; ?wait=processed returns once the worker applied them.
    assert send_demo_events(cluster.url, cluster.key, events=events) == len(events)

    # Served features: from Redis, written by the worker, read by whichever replica answers.
    status, _, body = request(f"{cluster.url}/features/demo-shop/users/{users[0]}", cluster.key)
    assert status == 200, body
    assert body["values"], body

    # Analytics answered by the API replicas: the worker's micro-batches reach the lake
    # (flush 1 s), each replica looks again at most every second.
    deadline = time.monotonic() + 30
    counted = None
    while time.monotonic() < deadline:
        status, headers, body = request(
            f"{cluster.url}/v1/analytics/overview?interval=day", cluster.key
        )
        assert status == 200, body
        counted = body["totals"]["events"]["value"]
        if counted == len(events):
            break
        time.sleep(0.5)
    assert counted == len(events)

    # Requests spread over both replicas (round robin): each answered some of 20.
    replicas = set()
    for _ in range(20):
        status, headers, _ = request(f"{cluster.url}/health/live", cluster.key)
        assert status == 200
        request_id = headers.get("x-request-id") or headers["X-Request-ID"]
        time.sleep(0.01)
        replicas.update(served_by(cluster, request_id))
    assert replicas == {"api-1", "api-2"}

    # kill -9 one replica: every idempotent GET still answers 200 (nginx retries a refused
    # connection on the other replica), and so does an ingest POST (never sent to the dead
    # one, so nginx may pass it on; one cut mid-request would be a 502 for the client).
    cluster.apis()[0].kill9()
    for user in users * 3:
        status, _, body = request(f"{cluster.url}/features/demo-shop/users/{user}", cluster.key)
        assert status == 200, body
    # nginx tried the dead replica, then the live one, within the same client request.
    access = (cluster.workdir / "nginx" / "access.log").read_text()
    assert "upstream_status=502, 200" in access
    status, _, body = request(f"{cluster.url}/v1/analytics/overview?interval=day", cluster.key)
    assert status == 200, body
    more = demo_events()[60:70]
    assert send_demo_events(cluster.url, cluster.key, events=more) == len(more)
