"""The processor pauses when its online store (Redis) goes away and resumes without losing
its place when it is back: events ingested meanwhile (into the embedded log) are all
applied, each once — the served count equals what was sent."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dataintel.main import create_app
from tests.conftest import Keys, apply_yaml, require_service
from tests.faults.events import cart_adds, metric
from tests.faults.proxy import TcpProxy, proxy_to
from tests.faults.test_breakers import SHOP


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    require_service("redis", "127.0.0.1", 6379)
    with proxy_to("127.0.0.1", 6379) as proxy:
        yield proxy


def test_the_processor_pauses_while_its_store_is_away_and_resumes_in_place(
    make_settings: Any, redis_proxy: TcpProxy
) -> None:
    prefix = f"pause{uuid.uuid4().hex[:8]}:"
    settings = make_settings(
        online_url=f"redis://{redis_proxy.address}/13?prefix={prefix}",
        breaker_threshold=2,
        breaker_reset_seconds=0.5,
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = Keys(app)
        keys.project("shop")
        apply_yaml(app, SHOP)
        ingest = keys.headers(["ingest"], "shop")
        url = "/ingest/shop/web/batch"
        assert client.post(url + "?wait=processed", json=cart_adds(3), headers=ingest).json()[
            "processed"
        ]

        redis_proxy.down()
        for _ in range(5):  # ingest goes on: the log is local
            assert client.post(url, json=cart_adds(4), headers=ingest).status_code == 200
        deadline = time.monotonic() + 20
        while metric(client, "dataintel_processor_paused") != 1:
            assert time.monotonic() < deadline, "the processor did not pause"
            time.sleep(0.1)

        redis_proxy.up()
        done = client.post(url + "?wait=processed", json=cart_adds(1), headers=ingest)
        assert done.status_code == 200, done.text  # acked: durable in the log either way
        service = keys.headers(["service"], "shop")

        def carts() -> Any:
            found = client.get("/features/shop/users/ada", headers=service)
            return found.json()["values"]["carts_1h"] if found.status_code == 200 else None

        deadline = time.monotonic() + 20
        while carts() != 3 + 20 + 1:  # every event applied, each once
            assert time.monotonic() < deadline, f"the processor did not resume: {carts()}"
            time.sleep(0.2)
        assert metric(client, "dataintel_processor_paused") == 0
        time.sleep(1.0)  # and nothing more arrives later (no double application)
        assert carts() == 24
