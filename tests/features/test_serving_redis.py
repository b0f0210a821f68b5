"""Serving from the Redis online store through HTTP: reads use the async client in the event
loop (``RedisOnline.aread``), one round trip per request, and see every processed event."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Keys, require_service
from tests.features.conftest import REDIS, drop_redis_prefix, redis_prefix
from tests.features.test_serving import Store, add

from dataintel.api.state import ONLINE
from dataintel.main import create_app
from dataintel.settings import Settings


@pytest.fixture
def redis_store(make_settings: Callable[..., Settings]) -> Iterator[Store]:
    require_service("redis", "127.0.0.1", 6379)
    prefix = redis_prefix()
    app = create_app(make_settings(online_url=f"{REDIS}?prefix={prefix}"))
    with TestClient(app) as client:
        store = Store(app, client, Keys(app))
        store.wait_ready()
        yield store
    drop_redis_prefix(prefix)


def test_vectors_from_redis_follow_new_events(redis_store: Store) -> None:
    store = redis_store
    assert store.app.state.dataintel.port(ONLINE).kind == "redis"
    store.ingest_batch([add(1, "u1", "c1", "s1", 10.0, timedelta(minutes=2))])
    first = store.get("/features/store/users/u1")
    assert first["values"]["adds_24h"] == 1
    assert first["values"]["spend_1h"] == 10.0
    again = store.get("/features/store/users/u1")["values"]  # blobs from the decode cache
    for values in (first["values"], again):
        del values["minutes_since_sku"]  # depends on t
    assert again == first["values"]
    store.ingest_batch([add(2, "u1", "c1", "s2", 20.0, timedelta(minutes=1))])
    after = store.get("/features/store/users/u1")["values"]
    assert (after["adds_24h"], after["spend_1h"], after["last_sku_24h"]) == (2, 30.0, "s2")
    cart = store.get("/v1/features/c1")
    assert cart["values"]["cart_value_1h"] == 30.0
    assert cart["values"]["user.adds_24h"] == 2
    batch = store.client.post(
        "/features/store/users/batch", json={"user_ids": ["u1", "nobody"]}, headers=store.service
    ).json()["results"]
    assert batch[0]["values"]["adds_24h"] == 2
    assert batch[1]["values"]["adds_24h"] == 0
    assert batch[1]["status"]["adds_24h"] == "no_data"
