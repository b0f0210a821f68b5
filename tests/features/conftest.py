"""Feature-engine fixtures: fresh OnlineStores of each adapter (embedded, Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import require_service

from dataintel.storage.online.port import OnlineStore
from dataintel.storage.online.registry import open_online

REDIS = "redis://127.0.0.1:6379/0"
OnlineFactory = Callable[[], OnlineStore]


@pytest.fixture(params=["embedded", "redis"])
def online_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineFactory]:
    """Each call opens a new, empty store; all are closed (and Redis keys removed) after."""
    opened: list[tuple[OnlineStore, str]] = []
    if request.param == "redis":
        require_service("redis", "127.0.0.1", 6379)

    def make() -> OnlineStore:
        if request.param == "embedded":
            url = f"sqlite:///{tmp_path / f'online-{len(opened)}.db'}"
        else:
            url = f"{REDIS}?prefix=ditest-{uuid.uuid4().hex[:12]}"
        store = open_online(url, 86400 * 90)
        opened.append((store, url))
        return store

    yield make
    for store, url in opened:
        if url.startswith("redis"):
            import redis

            prefix = url.split("prefix=")[1]
            client = redis.Redis.from_url(REDIS)
            keys = list(client.scan_iter(f"{prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()
        store.close()


@pytest.fixture(params=["embedded", "redis"])
def online_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The app's OnlineStore URL: None (the embedded default) or a fresh Redis prefix.
    Override ``app`` with ``make_settings(online_url=online_url)`` to run on both."""
    if request.param == "embedded":
        yield None
        return
    require_service("redis", "127.0.0.1", 6379)
    prefix = f"ditest-{uuid.uuid4().hex[:12]}"
    yield f"{REDIS}?prefix={prefix}"
    import redis

    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
