"""The Cache port (webhook replay guard): memory:// and redis:// behave the same."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from dataintel.storage.cache import Cache, MemoryCache, open_cache
from tests.conftest import REDIS_URL, require_service


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    if request.param == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        opened = open_cache(REDIS_URL)
    else:
        opened = open_cache("memory://")
    opened.ping()
    yield opened
    opened.close()


def test_add_if_absent_is_true_once(cache: Cache) -> None:
    key = f"test:{uuid.uuid4().hex}"
    assert cache.add_if_absent(key, 60) is True
    assert cache.add_if_absent(key, 60) is False
    assert cache.add_if_absent(key + "-other", 60) is True


def test_memory_keys_expire_after_their_ttl() -> None:
    clock = Clock()
    cache = MemoryCache(clock)
    assert cache.add_if_absent("k", 10)
    clock.now += 9.9
    assert not cache.add_if_absent("k", 10)
    clock.now += 0.2
    assert cache.add_if_absent("k", 10)  # expired: new again
    for i in range(100):
        cache.add_if_absent(f"x{i}", 1)
    clock.now += 20
    cache.add_if_absent("y", 1)
    assert len(cache._expires) == 1


def test_unknown_cache_scheme() -> None:
    with pytest.raises(ValueError, match="cache_url"):
        open_cache("memcached://x")


def test_values_round_trip_and_expire(cache: Cache) -> None:
    key = f"test:{uuid.uuid4().hex}"
    assert cache.get(key) is None
    cache.put(key, b"\x00answer", 60)
    assert cache.get(key) == b"\x00answer"
    cache.put(key, b"newer", 60)
    assert cache.get(key) == b"newer"
    assert cache.get(key + "-other") is None


def test_memory_values_expire_and_the_least_recently_used_goes_first() -> None:
    clock = Clock()
    cache = MemoryCache(clock, max_values=2)
    cache.put("a", b"1", 10)
    cache.put("b", b"2", 10)
    assert cache.get("a") == b"1"  # a is now the most recently used
    cache.put("c", b"3", 10)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (b"1", b"3")
    clock.now += 10
    assert cache.get("a") is None
