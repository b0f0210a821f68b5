"""The dedup store of the Kafka EventLog: which ``dedup_key`` was appended within the window.

Kafka has no "insert unless present", so the Kafka adapter runs: check (read) → produce the
events not seen → record their keys. This is BEST EFFORT, by design:

- a crash (or a failed record) after the produce and before the record lets a retry of the
  same event through, and two concurrent requests carrying the same key can both pass the
  check; the event is then in the log twice. Every sink is idempotent on
  (project_id, event_id), so it is still stored once (DESIGN.md §3);
- the other order (claim the key first, then produce) would turn a crash between the two into
  a silently lost event that every retry reports as a duplicate: never acceptable;
- a dedup store that does not answer (Redis down, or slower than ``CHECK_TIMEOUT_S``) skips
  the check (every key counts as unseen, with a warning) instead of failing the append: an
  outage of the dedup store must not become an outage of ingest (nor count against the event
  log's circuit breaker); the sinks keep each event once meanwhile.

Chosen by ``settings.cache_url``: ``memory://`` (one process) or ``redis://host:port/db``
(shared by every replica; keys ``dataintel:dedup:<key>`` expiring with the window).
The embedded SQLite adapter does not use this: its dedup is exact (same transaction).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog

REDIS_PREFIX = "dataintel:dedup:"
CHECK_TIMEOUT_S = 1.0  # a check or record that takes longer is given up (best effort)

log = structlog.get_logger("dataintel.eventlog")


class DedupStore(ABC):
    @abstractmethod
    async def seen(self, keys: Sequence[str]) -> list[bool]:
        """Per key, whether it was recorded within the window."""

    @abstractmethod
    async def record(self, keys: Sequence[str]) -> None:
        """Remember ``keys`` for the window (from now)."""

    @abstractmethod
    async def ping(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


class MemoryDedupStore(DedupStore):
    """A dict key → expiry, in insertion (= expiry) order; expired keys go from the front."""

    def __init__(self, window_s: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._expires: dict[str, float] = {}

    async def seen(self, keys: Sequence[str]) -> list[bool]:
        now = self._clock()
        self._evict(now)
        return [self._expires.get(key, 0.0) > now for key in keys]

    async def record(self, keys: Sequence[str]) -> None:
        until = self._clock() + self._window_s
        for key in keys:
            self._expires.pop(key, None)  # re-insert at the end: order stays by expiry
            self._expires[key] = until

    def _evict(self, now: float) -> None:
        expired = []
        for key, until in self._expires.items():
            if until > now:
                break
            expired.append(key)
        for key in expired:
            del self._expires[key]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._expires.clear()


class RedisDedupStore(DedupStore):
    """MGET to check; one Lua call (``SET key 1 PX window`` per key) to record a batch."""

    _RECORD = "for _, key in ipairs(KEYS) do redis.call('SET', key, '1', 'PX', ARGV[1]) end"

    def __init__(self, url: str, window_s: int, prefix: str = REDIS_PREFIX) -> None:
        try:
            import redis.asyncio as aioredis
        except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "cache_url redis:// needs the redis package: pip install redis"
            ) from exc
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self._client: Any = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._record_script: Any = self._client.register_script(self._RECORD)
        self._window_ms = window_s * 1000
        self._prefix = prefix
        self._down = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)

    async def seen(self, keys: Sequence[str]) -> list[bool]:
        if not keys:
            return []
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                values = await self._client.mget([self._prefix + key for key in keys])
        except self._down as exc:
            log.warning(
                "dedup check skipped: the dedup store does not answer (sinks keep events once)",
                error=f"{type(exc).__name__}: {exc}"[:200],
                keys=len(keys),
            )
            return [False] * len(keys)
        return [value is not None for value in values]

    async def record(self, keys: Sequence[str]) -> None:
        if keys:
            prefixed = [self._prefix + key for key in keys]
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await self._record_script(keys=prefixed, args=[self._window_ms])

    async def ping(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()


def open_dedup_store(cache_url: str, window_s: int) -> DedupStore:
    """The DedupStore named by ``cache_url``: memory:// or redis://host:port/db."""
    scheme = urlsplit(cache_url).scheme
    if scheme == "memory":
        return MemoryDedupStore(window_s)
    if scheme in {"redis", "rediss", "unix"}:
        return RedisDedupStore(cache_url, window_s)
    raise ValueError(f"unsupported cache_url scheme {scheme!r} (memory, redis)")
