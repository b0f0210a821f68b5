"""GDPR on the production engines: PostgreSQL metadata, the Redis online store and the
ClickHouse analytics store (chDB). Real REES46 users; the subject's ids afterwards appear in
no file of the data directory (chDB's parts included) and in no Redis key or value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from dataintel.api.state import ANALYTICS, ONLINE
from dataintel.settings import Settings
from tests.conftest import require_service
from tests.features.conftest import REDIS, drop_redis_prefix, redis_prefix
from tests.gdpr.conftest import Shop, busiest_users, files_containing

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
def settings(make_settings: Any, online_url: str, tmp_path: Any) -> Settings:
    return make_settings(
        online_url=online_url,
        analytics_url=f"chdb:///{tmp_path}/ch",
        gdpr_suppression_refresh_seconds=0.2,
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


def test_forget_on_postgres_redis_and_clickhouse(
    shop: Shop, app: Any, online_url: str, settings: Settings
) -> None:
    state = app.state.dataintel
    assert state.port(ONLINE).kind == "redis"
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
    bad = {**mine[0], "event_id": "bad-1", "properties": {"price": "NaN?"}}
    assert shop.send([bad])["rejected"] == 1

    created = shop.forget(user)
    done = shop.wait(created["request_id"])
    assert done["status"] == "finished", done
    erased = {s["store"]: s["erased"] for s in done["stores"]}
    assert erased["analytics"] == len(mine)
    assert erased["event_log"] == len(mine)
    assert erased["dead_letters"] == 1
    assert erased["online"] >= 1

    assert shop.export(user)["events"] == []
    assert shop.send([{**mine[0], "event_id": "late"}])["suppressed"] == 1
    assert _redis_containing(prefix, needles) == set()
    leaks = files_containing(settings.data_dir, needles)
    assert leaks == {}, leaks
