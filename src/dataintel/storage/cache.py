"""The Cache port: shared, short-lived "have I seen this?" state.

One operation, ``add_if_absent(key, ttl_s)``: record ``key`` for ``ttl_s`` seconds and say
whether it was new. Used by ingest's webhook replay guard (a signature header seen twice
within its tolerance window is a replay). Chosen by URL (``settings.cache_url``):

- ``memory://``: in this process only (one API process, tests);
- ``redis://host:port/db``: shared by every replica (``SET key 1 NX EX ttl``, atomic).
"""

from __future__ import annotations

import heapq
import threading
import time
from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import urlsplit


class Cache(ABC):
    @abstractmethod
    def add_if_absent(self, key: str, ttl_s: int) -> bool:
        """Remember ``key`` for ``ttl_s`` seconds; True when it was not already remembered."""

    @abstractmethod
    def ping(self) -> None:
        """Raise when the cache cannot be reached (readiness)."""

    @abstractmethod
    def close(self) -> None: ...


class MemoryCache(Cache):
    """A dict with expiry times; expired keys are evicted in time order (a heap)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._expires: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def add_if_absent(self, key: str, ttl_s: int) -> bool:
        now = self._clock()
        with self._lock:
            self._evict(now)
            if self._expires.get(key, 0.0) > now:
                return False
            until = now + max(ttl_s, 1)
            self._expires[key] = until
            heapq.heappush(self._heap, (until, key))
            return True

    def _evict(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            until, key = heapq.heappop(self._heap)
            if self._expires.get(key) == until:
                del self._expires[key]

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._expires.clear()
            self._heap.clear()


class RedisCache(Cache):
    def __init__(self, url: str, prefix: str = "dataintel:cache:") -> None:
        try:
            import redis
        except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "cache_url redis:// needs the redis package: pip install redis"
            ) from exc
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix

    def add_if_absent(self, key: str, ttl_s: int) -> bool:
        return bool(self._client.set(self._prefix + key, b"1", nx=True, ex=max(ttl_s, 1)))

    def ping(self) -> None:
        self._client.ping()

    def close(self) -> None:
        self._client.close()


def open_cache(url: str) -> Cache:
    """The Cache named by ``url``: memory:// or redis://[:password@]host:port/db."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return MemoryCache()
    if scheme in {"redis", "rediss", "unix"}:
        return RedisCache(url)
    raise ValueError(f"unsupported cache_url scheme {scheme!r} (memory, redis)")
