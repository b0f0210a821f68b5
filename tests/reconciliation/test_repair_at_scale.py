"""The same damage and repair on the production engines: PostgreSQL metadata, the Kafka
event log (two partitions, crypto-shredded records), the Redis online store and the
ClickHouse analytics store (chDB). The day's entries are found in the Kafka log by the same
binary search, and the lost user's state is found missing in Redis and recomputed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dataintel.api.state import ANALYTICS, EVENTLOG, ONLINE
from dataintel.settings import Settings
from dataintel.storage.eventlog.dedup import REDIS_PREFIX
from dataintel.storage.eventlog.kafka import KafkaEventLog
from dataintel.storage.online.port import EntityRef
from tests.conftest import REDIS_URL, require_service
from tests.features.conftest import REDIS, drop_redis_prefix, redis_prefix
from tests.gdpr.conftest import busiest_users
from tests.reconciliation.conftest import Shop, delete_rows
from tests.reconciliation.test_repair import findings, reference, reports_of, served_views

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
def settings(make_settings: Any, online_url: str, tmp_path: Any, kafka_broker: Any) -> Settings:
    client = redis.Redis.from_url(REDIS_URL)  # an earlier run's dedup keys of these ids
    stale = list(client.scan_iter(f"{REDIS_PREFIX}shop/*"))
    if stale:
        client.delete(*stale)
    client.close()
    found: Settings = make_settings(
        online_url=online_url,
        analytics_url=f"chdb:///{tmp_path}/ch",
        eventlog_url=kafka_broker.url(f"recon-{uuid.uuid4().hex[:8]}", 2)
        + "&session_timeout_ms=2000&heartbeat_interval_ms=200",
        cache_url=REDIS_URL,
    )
    return found


def test_repair_on_postgres_kafka_redis_and_clickhouse(shop: Shop) -> None:
    state = shop.app.state.dataintel
    log = state.port(EVENTLOG).inner  # behind the outage spool and its circuit breaker
    assert isinstance(log._port, KafkaEventLog)
    assert state.port(ONLINE).kind == "redis"
    assert state.port(ANALYTICS).dialect == "clickhouse"
    expected = reference(shop.events)
    first = reports_of(shop, shop.reconcile(1))
    assert findings(first) == {}
    assert sum(r["counts"]["event_log"]["events"] for r in first) == len(shop.events)

    lost = sorted(e["event_id"] for e in shop.web if e["event"] == "purchase")[:3]
    delete_rows(shop.analytics, "shop", lost)
    user = busiest_users(shop.web, 1)[0]
    views = sum(1 for e in shop.web if e["user_id"] == user and e["event"] == "view")
    assert state.port(ONLINE).delete_entities([EntityRef("shop", "user_id", user)]) == 1

    second = reports_of(shop, shop.reconcile(2))
    assert findings(second) == {"analytics_missing_events": lost, "online_missing_entities": [user]}
    after = [r["counts"]["analytics_after_repair"] for r in second]
    assert sum(a["events"] for a in after) == expected["totals"]["events"]
    assert round(sum(a["revenue"] for a in after), 6) == expected["totals"]["revenue"]
    assert served_views(shop, user) == views
    assert findings(reports_of(shop, shop.reconcile(3))) == {}
