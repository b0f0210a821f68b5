"""Per-credential rate limiting with the `limits` library (memory:// or redis:// storage)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from dataintel.errors import RateLimited


class RateLimiter:
    def __init__(self, limit: str, storage_url: str) -> None:
        self.items: list[RateLimitItem] = parse_many(limit)
        self.storage = storage_from_string(storage_url)
        self.limiter = MovingWindowRateLimiter(self.storage)

    def hit(self, identity: str) -> None:
        """Count one request of ``identity``; raise RateLimited (429) when over a limit."""
        for item in self.items:
            if not self.limiter.hit(item, identity):
                stats = self.limiter.get_window_stats(item, identity)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(f"rate limit {item} exceeded for this credential", retry)

    def check_storage(self) -> bool:
        return bool(self.storage.check())
