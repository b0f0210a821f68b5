"""GDPR on the production engines: PostgreSQL metadata, the Kafka event log (crypto-shredded),
the Redis online store and the ClickHouse analytics store (chDB). Real REES46 users; the
subject's ids afterwards appear in no file of the data directory (chDB's parts included), in
no Redis key or value, and in no readable record of the Kafka topic."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis

from dataintel.api.state import ANALYTICS, EVENTLOG, ONLINE
from dataintel.settings import Settings
from dataintel.storage.eventlog.dedup import REDIS_PREFIX
from dataintel.storage.eventlog.kafka import KafkaEventLog
from dataintel.storage.eventlog.kafka_topic import KafkaTopic
from tests.conftest import REDIS_URL, require_service
from tests.features.conftest import REDIS, drop_redis_prefix, redis_prefix
from tests.gdpr.conftest import Receiver, Shop, busiest_users, files_containing
from tests.gdpr.test_forget import product_views

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def online_url() -> Iterator[str]:
    require_service("redis", "127.0.0.1", 6379)
    prefix = redis_prefix()
    yield f"{REDIS}?prefix={prefix}"
    drop_redis_prefix(prefix)


@pytest.fixture
def settings(
    make_settings: Any, online_url: str, tmp_path: Any, kafka_broker: Any, receiver: Receiver
) -> Settings:
    topic = f"gdpr-{uuid.uuid4().hex[:8]}"
    # Kafka's dedup keys live in Redis for the dedup window: an earlier run's would make
    # this run's events duplicates.
    client = redis.Redis.from_url(REDIS_URL)
    stale = list(client.scan_iter(f"{REDIS_PREFIX}shop/*"))
    if stale:
        client.delete(*stale)
    client.close()
    return make_settings(
        online_url=online_url,
        analytics_url=f"chdb:///{tmp_path}/ch",
        eventlog_url=kafka_broker.url(topic, 2)
        + "&session_timeout_ms=2000&heartbeat_interval_ms=200",
        cache_url=REDIS_URL,
        gdpr_suppression_refresh_seconds=0.2,
        gdpr_forget_webhook_url=f"http://127.0.0.1:{receiver.server_address[1]}/gdpr",
        gdpr_forget_topic=f"gdpr-forget-{uuid.uuid4().hex[:8]}",
    )


def _redis_containing(prefix: str, needles: set[str]) -> set[str]:
    client = redis.Redis.from_url(REDIS)
    found: set[str] = set()
    try:
        for key in client.scan_iter(f"{prefix}*"):
            blob = key + (client.dump(key) or b"")
            found |= {n for n in needles if n.encode() in blob}
    finally:
        client.close()
    return found


def await_readable(log: KafkaEventLog, needles: set[str], client: Any) -> set[str]:
    """The needles found in the records the log still returns (every partition)."""

    async def scan() -> set[str]:
        found: set[str] = set()
        for p in range(log.partitions):
            for entry in await log.read(p, 0, 100_000):
                found |= {n for n in needles if n.encode() in entry.value}
        return found

    return set(client.portal.call(scan))


def innermost(log: Any) -> Any:
    """The adapter under the ingest spool and the circuit breaker's proxy."""
    while True:
        inner = vars(log).get("inner") or vars(log).get("_port")
        if inner is None:
            return log
        log = inner


def test_forget_on_postgres_kafka_redis_and_clickhouse(
    shop: Shop, app: Any, online_url: str, settings: Settings, receiver: Receiver
) -> None:
    state = app.state.dataintel
    assert state.port(ONLINE).kind == "redis"
    assert isinstance(innermost(state.port(EVENTLOG)), KafkaEventLog)
    assert state.port(ANALYTICS).dialect == "clickhouse"
    user = busiest_users(shop.events, 1)[0]
    mine = [e for e in shop.events if e["user_id"] == user]
    needles = {
        user,
        *{e["session_id"] for e in mine},
        *{e["cart_id"] for e in mine if "cart_id" in e},
    }
    prefix = online_url.split("prefix=")[1]
    assert _redis_containing(prefix, needles), "the user's entities are in Redis before"
    assert await_readable(state.port(EVENTLOG), needles, shop.client), "and in the log"
    bad = {**mine[0], "event_id": "bad-1", "properties": {"price": "NaN?"}}
    assert shop.send([bad])["rejected"] == 1

    created = shop.forget(user)
    done = shop.wait(created["request_id"], until="delivered")
    assert done["status"] == "finished", done
    erased = {s["store"]: s["erased"] for s in done["stores"]}
    assert erased["analytics"] == len(mine)
    assert erased["event_log"] >= 1  # Kafka: the data keys destroyed (user, carts, sessions)
    assert erased["dead_letters"] == 1
    assert erased["online"] >= 1

    assert shop.export(user)["events"] == []
    assert shop.send([{**mine[0], "event_id": "late"}])["suppressed"] == 1
    assert _redis_containing(prefix, needles) == set()
    assert not await_readable(state.port(EVENTLOG), needles, shop.client)
    leaks = files_containing(settings.data_dir, needles)
    assert leaks == {}, leaks
    [(_, message)] = [m for m in receiver.messages if created["request_id"].encode() in m[1]]
    assert user.encode() in message
    topic = KafkaTopic(settings.resolved_eventlog_url, settings.gdpr_forget_topic or "")

    async def published() -> list[tuple[bytes | None, bytes]]:
        await topic.start()
        try:
            return await topic.read_all()
        finally:
            await topic.close()

    [(key, value)] = shop.client.portal.call(published)  # type: ignore[union-attr]
    assert key == created["request_id"].encode()
    assert orjson.loads(value)["user_id"] == user
    products = sorted({e["properties"]["product_id"] for e in mine if e["event"] == "view"})
    others = Counter(
        e["properties"]["product_id"]
        for e in shop.events
        if e["event"] == "view" and e["user_id"] != user
    )
    assert product_views(shop.client, app, products) == {p: others[p] for p in products}


def test_the_other_request_types_on_postgres_kafka_redis_and_clickhouse(shop: Shop) -> None:
    second, third = busiest_users(shop.events, 3)[1:]
    theirs = [e for e in shop.events if e["user_id"] == second]
    done = shop.wait(shop.forget(second, "DELETE_ONLY")["request_id"])
    assert done["status"] == "finished", done
    assert {s["store"]: s["erased"] for s in done["stores"]}["analytics"] == len(theirs)
    assert shop.export(second)["events"] == []
    assert shop.send([{**theirs[0], "event_id": "again"}])["accepted"] == 1
    first = next(e for e in shop.events if e["user_id"] == third)
    assert shop.forget(third, "SUPPRESS_ONLY")["status"] == "finished"
    assert shop.send([{**first, "event_id": "s1"}])["suppressed"] == 1
    assert shop.forget(third, "UNSUPPRESS")["status"] == "finished"
    assert shop.send([{**first, "event_id": "s2"}])["accepted"] == 1
