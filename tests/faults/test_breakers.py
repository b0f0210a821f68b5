"""Circuit breakers, with the online store's Redis behind a TCP proxy that goes away: the
first failures answer 503 naming the backend, then the breaker opens and calls fail at once
with Retry-After (no waiting on a dead backend), /health/ready and /metrics show it open;
when Redis is back the breaker closes at the first success and serving answers again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.main import create_app
from dataintel.settings import Settings
from tests.conftest import require_service
from tests.faults.events import open_shop
from tests.faults.proxy import TcpProxy, proxy_to


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    require_service("redis", "127.0.0.1", 6379)
    with proxy_to("127.0.0.1", 6379) as proxy:
        yield proxy


@pytest.fixture
def settings(make_settings: Any, redis_proxy: TcpProxy) -> Settings:
    prefix = f"brk{uuid.uuid4().hex[:8]}:"
    return make_settings(
        online_url=f"redis://{redis_proxy.address}/13?prefix={prefix}",
        breaker_threshold=3,
        breaker_reset_seconds=1.0,
    )


def test_an_online_store_outage_opens_the_breaker_and_recovery_closes_it(
    settings: Settings, redis_proxy: TcpProxy
) -> None:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = open_shop(app)
        event = {
            "event_id": uuid.uuid4().hex,
            "event": "cart_add",
            "timestamp": datetime.now(UTC).isoformat(),
            "user_id": "ada",
            "properties": {"price": 2.5},
        }
        ingest = keys.headers(["ingest"], "shop")
        sent = client.post("/ingest/shop/web/batch?wait=processed", json=[event], headers=ingest)
        assert sent.status_code == 200, sent.text
        service = keys.headers(["service"], "shop")
        url = "/features/shop/users/ada"
        assert client.get(url, headers=service).json()["values"]["carts_1h"] == 1

        redis_proxy.down()
        unseen = "/features/shop/users/grace"  # never served by this process
        failures = [client.get(unseen, headers=service) for _ in range(3)]
        for failed in failures:  # an outage: 503 naming the backend, never a 500
            assert failed.status_code == 503, failed.text
            assert failed.json()["dependency"] == "online"
        started = time.monotonic()
        refused = client.get(unseen, headers=service)
        assert time.monotonic() - started < 0.5  # the breaker answers, not a dead socket
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "circuit open" in refused.json()["detail"]
        stale = client.get(url, headers=service)  # served before: the last vector, marked
        assert stale.status_code == 200, stale.text
        assert stale.json()["values"]["carts_1h"] == 1
        assert stale.json()["stale"] is True
        assert stale.json()["stale_age_seconds"] >= 0
        ready = client.get("/health/ready")  # degraded is ready: it serves stale vectors
        assert ready.status_code == 200
        assert ready.json()["breakers"]["online"] == "opened"
        metrics = client.get("/metrics").text
        assert 'dataintel_breaker_state{dependency="online"} 2.0' in metrics

        redis_proxy.up()
        time.sleep(1.1)  # the breaker's reset time: it lets a call through again
        served = client.get(url, headers=service)
        assert served.status_code == 200, served.text
        assert served.json()["values"]["carts_1h"] == 1
        assert "stale" not in served.json()
        assert client.get("/health/ready").json()["breakers"]["online"] == "closed"


def test_a_slow_online_store_answers_the_recent_vector_stale_never_hangs(
    make_settings: Any, redis_proxy: TcpProxy
) -> None:
    prefix = f"slow{uuid.uuid4().hex[:8]}:"
    settings = make_settings(
        online_url=f"redis://{redis_proxy.address}/13?prefix={prefix}",
        serving_timeout_seconds=0.3,
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = open_shop(app)
        event = {
            "event_id": uuid.uuid4().hex,
            "event": "cart_add",
            "timestamp": datetime.now(UTC).isoformat(),
            "user_id": "ada",
            "properties": {"price": 2.5},
        }
        ingest = keys.headers(["ingest"], "shop")
        sent = client.post("/ingest/shop/web/batch?wait=processed", json=[event], headers=ingest)
        assert sent.json()["processed"] is True, sent.text
        service = keys.headers(["service"], "shop")
        url = "/features/shop/users/ada"
        assert client.get(url, headers=service).json()["values"]["carts_1h"] == 1

        redis_proxy.delay = 1.0  # every answer of Redis a second late
        started = time.monotonic()
        slow = client.get(url, headers=service)
        assert time.monotonic() - started < 0.9  # the timeout, not Redis, decides
        assert slow.status_code == 200, slow.text
        assert (slow.json()["stale"], slow.json()["values"]["carts_1h"]) == (True, 1)
        unseen = client.get("/features/shop/users/grace", headers=service)
        assert unseen.status_code == 503, unseen.text
        redis_proxy.delay = 0.0
