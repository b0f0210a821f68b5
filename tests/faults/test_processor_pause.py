"""The processor pauses when its online store (Redis) goes away and resumes without losing
its place when it is back: events ingested meanwhile are all applied, each once — the served
count equals what was sent. On the embedded log and on Kafka with 4 partitions (users spread
over them): a consumer started while the store was still away used to stay in the group,
holding partitions nobody polled, so those users' features stopped for good."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.main import create_app
from tests.conftest import require_service
from tests.faults.events import cart_adds, metric, open_shop
from tests.faults.proxy import TcpProxy, proxy_to


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    require_service("redis", "127.0.0.1", 6379)
    with proxy_to("127.0.0.1", 6379) as proxy:
        yield proxy


USERS = [f"user-{n}" for n in range(8)]  # over the 4 partitions of the Kafka log


@pytest.mark.parametrize("log", ["embedded", "kafka"])
def test_the_processor_pauses_while_its_store_is_away_and_resumes_in_place(
    make_settings: Any, redis_proxy: TcpProxy, request: pytest.FixtureRequest, log: str
) -> None:
    prefix = f"pause{uuid.uuid4().hex[:8]}:"
    extra: dict[str, Any] = {}
    if log == "kafka":
        broker = request.getfixturevalue("kafka_broker")
        topic = f"pause-{uuid.uuid4().hex[:8]}"
        extra["eventlog_url"] = (
            broker.url(topic, 4) + "&session_timeout_ms=2000&heartbeat_interval_ms=200"
        )
    settings = make_settings(
        online_url=f"redis://{redis_proxy.address}/13?prefix={prefix}",
        breaker_threshold=2,
        breaker_reset_seconds=0.5,
        **extra,
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = open_shop(app)
        ingest = keys.headers(["ingest"], "shop")
        url = "/ingest/shop/web/batch"
        first = [e for user in USERS for e in cart_adds(3, user)]
        assert client.post(url + "?wait=processed", json=first, headers=ingest).json()["processed"]

        redis_proxy.down()
        for _ in range(5):  # ingest goes on: the log does not need Redis
            batch = [e for user in USERS for e in cart_adds(4, user)]
            assert client.post(url, json=batch, headers=ingest).status_code == 200
        deadline = time.monotonic() + 20
        while metric(client, "dataintel_processor_paused") != 1:
            assert time.monotonic() < deadline, "the processor did not pause"
            time.sleep(0.1)

        redis_proxy.up()
        last = [e for user in USERS for e in cart_adds(1, user)]
        done = client.post(url + "?wait=processed", json=last, headers=ingest)
        assert done.status_code == 200, done.text  # acked: durable in the log either way
        service = keys.headers(["service"], "shop")

        def carts() -> dict[str, Any]:
            out = {}
            for user in USERS:
                found = client.get(f"/features/shop/users/{user}", headers=service)
                out[user] = found.json()["values"]["carts_1h"] if found.status_code == 200 else None
            return out

        every = dict.fromkeys(USERS, 3 + 20 + 1)  # every event applied, each once
        deadline = time.monotonic() + 30
        while carts() != every:
            assert time.monotonic() < deadline, f"the processor did not resume: {carts()}"
            time.sleep(0.2)
        assert metric(client, "dataintel_processor_paused") == 0
        time.sleep(1.0)  # and nothing more arrives later (no double application)
        assert carts() == every
