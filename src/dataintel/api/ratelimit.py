"""Per-credential rate limiting with the `limits` library (memory:// or redis:// storage).

The sliding-window-counter strategy keeps two counters per credential and window (O(1) memory
in Redis, unlike a moving window log), weighting the previous window by its overlap."""

from __future__ import annotations

import math
import time
from typing import Any

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from dataintel.errors import RateLimited, Unavailable

# A rate-limit check must never hang a request: bound Redis connects and replies.
_REDIS_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}


class RateLimiter:
    def __init__(self, limit: str, storage_url: str) -> None:
        self.items: list[RateLimitItem] = parse_many(limit)
        options = _REDIS_OPTIONS if storage_url.startswith(("redis", "rediss")) else {}
        self.storage = storage_from_string(storage_url, wrap_exceptions=True, **options)
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)

    def hit(self, identity: str) -> None:
        """Count one request of ``identity``; raise RateLimited (429) when over a limit and
        Unavailable (503) when the counter storage does not answer (fail closed, like
        readiness, rather than silently unlimited)."""
        try:
            for item in self.items:
                if not self.limiter.hit(item, identity):
                    stats = self.limiter.get_window_stats(item, identity)
                    retry = max(1, math.ceil(stats.reset_time - time.time()))
                    raise RateLimited(f"rate limit {item} exceeded for this credential", retry)
        except StorageError as exc:
            raise Unavailable("the rate-limit storage is unavailable; retry shortly") from exc

    def check_storage(self) -> bool:
        return bool(self.storage.check())
