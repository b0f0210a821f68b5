"""The Cache port: shared, short-lived "have I seen this?" state.

``add_if_absent(key, ttl_s)``: record ``key`` for ``ttl_s`` seconds and say whether it was
new. Used by ingest's webhook replay guard (a signature header seen twice within its
tolerance window is a replay). ``get`` / ``put``: a value (bytes) for at most ``ttl_s``
seconds, e.g. a computed analytics answer. Chosen by URL (``settings.cache_url``):

- ``memory://``: in this process only (one API process, tests); values are kept in a
  least-recently-used map of at most ``max_values`` entries;
- ``redis://host:port/db``: shared by every replica (``SET key 1 NX EX ttl``, atomic;
  values with ``SET key value EX ttl``).
"""

from __future__ import annotations

import heapq
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit


class Cache(ABC):
    in_process = False  # True: get / put touch only this process's memory (no I/O)

    @abstractmethod
    def add_if_absent(self, key: str, ttl_s: int) -> bool:
        """Remember ``key`` for ``ttl_s`` seconds; True when it was not already remembered."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The value ``put`` under ``key``, unless it expired or was evicted."""

    @abstractmethod
    def put(self, key: str, value: bytes, ttl_s: int) -> None:
        """Keep ``value`` under ``key`` for at most ``ttl_s`` seconds."""

    @abstractmethod
    def ping(self) -> None:
        """Raise when the cache cannot be reached (readiness)."""

    @abstractmethod
    def close(self) -> None: ...


class MemoryCache(Cache):
    """A dict with expiry times; expired keys are evicted in time order (a heap)."""

    in_process = True

    def __init__(self, clock: Any = time.monotonic, max_values: int = 1024) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._expires: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._max_values = max_values
        self._values: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

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

    def get(self, key: str) -> bytes | None:
        with self._lock:
            hit = self._values.get(key)
            if hit is None:
                return None
            if hit[0] <= self._clock():
                del self._values[key]
                return None
            self._values.move_to_end(key)
            return hit[1]

    def put(self, key: str, value: bytes, ttl_s: int) -> None:
        until = self._clock() + max(ttl_s, 1)
        with self._lock:
            self._values[key] = (until, value)
            self._values.move_to_end(key)
            while len(self._values) > self._max_values:
                self._values.popitem(last=False)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._expires.clear()
            self._heap.clear()
            self._values.clear()


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

    def get(self, key: str) -> bytes | None:
        value = self._client.get(self._prefix + key)
        return bytes(value) if value is not None else None  # type: ignore[arg-type]

    def put(self, key: str, value: bytes, ttl_s: int) -> None:
        self._client.set(self._prefix + key, value, ex=max(ttl_s, 1))

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
