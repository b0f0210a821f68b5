"""Per-credential rate limiting: a sliding window counter, in process (memory://) or in Redis
through the `limits` library (redis://).

The sliding-window-counter strategy keeps two counters per credential and window (O(1) memory,
unlike a moving window log), weighting the previous window by its overlap. For memory:// the
counters are a dict in this process (``LocalWindows``): the same arithmetic as `limits`'
memory storage, but no expiry timer thread and no per-hit key strings (`limits` starts a
``threading.Timer`` every ~10 ms under load)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from dataintel.errors import RateLimited

# A rate-limit check must never hang a request: bound Redis connects and replies.
_REDIS_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}
SWEEP_EVERY = 4096  # new identities between two sweeps of idle counters
FALLBACK_S = 5.0  # after the shared storage failed, count in process this long, then retry


class LocalWindows:
    """Sliding window counters of one limit, per identity, in this process.

    Per identity: the index of the current fixed window and the counts of it and of the
    previous one. A hit is allowed when floor(previous · overlap + current) + 1 ≤ amount, as
    in `limits` (``acquire_sliding_window_entry``)."""

    def __init__(self, amount: int, expiry: int, clock: Callable[[], float] | None = None) -> None:
        self.amount = amount
        self.expiry = expiry
        self._clock = clock or time.time
        self._counts: dict[str, list[int]] = {}  # identity → [window index, previous, current]
        self._lock = threading.Lock()
        self._added = 0

    def hit(self, identity: str) -> float | None:
        """Count a hit; None when allowed, else the seconds until one would be."""
        now = self._clock()
        window = int(now // self.expiry)
        with self._lock:
            entry = self._counts.get(identity)
            if entry is None:
                entry = self._counts[identity] = [window, 0, 0]
                self._added += 1
                if self._added >= SWEEP_EVERY:
                    self._sweep(window)
            elif entry[0] != window:
                entry[1] = entry[2] if entry[0] == window - 1 else 0
                entry[2] = 0
                entry[0] = window
            previous, current = entry[1], entry[2]
            elapsed = now / self.expiry % 1
            previous_ttl = (1 - elapsed) * self.expiry if previous else 0.0
            weighted = previous * previous_ttl / self.expiry + current
            if math.floor(weighted) + 1 <= self.amount:
                entry[2] += 1
                return None
            return self._reset_in(previous, previous_ttl, current, elapsed)

    def _reset_in(self, previous: int, previous_ttl: float, current: int, elapsed: float) -> float:
        """As `limits`' ``get_window_stats``: when the weighted count next drops by one."""
        previous_reset = previous_ttl % (self.expiry / previous) if previous else math.inf
        current_ttl = (1 - elapsed) * self.expiry + self.expiry
        current_reset = current_ttl % self.expiry if current else math.inf
        return min(previous_reset, current_reset)

    def _sweep(self, window: int) -> None:
        """Forget identities idle for two windows (their counters are zero by now)."""
        self._counts = {k: v for k, v in self._counts.items() if v[0] >= window - 1}
        self._added = 0


class RateLimiter:
    def __init__(
        self, limit: str, storage_url: str, subject: str = "this credential", name: str = ""
    ) -> None:
        """``subject`` names what is counted in the 429's detail; ``name``, when set, is the
        problem's ``limit`` member (which of several limiters refused)."""
        self.subject = subject
        self.name = name or None
        self.items: list[RateLimitItem] = parse_many(limit)
        self.local: list[LocalWindows] | None = None
        if storage_url.startswith("memory://"):
            self.local = [LocalWindows(i.amount, i.get_expiry()) for i in self.items]
            return
        options = _REDIS_OPTIONS if storage_url.startswith(("redis", "rediss")) else {}
        self.storage = storage_from_string(storage_url, wrap_exceptions=True, **options)
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        # While the shared storage is away: the same limits per process (ADR 0017).
        self.fallback = [LocalWindows(i.amount, i.get_expiry()) for i in self.items]
        self.shared_down_until = 0.0

    def hit(self, identity: str) -> None:
        """Count one request of ``identity``; raise RateLimited (429) when over a limit.

        When the shared counter storage (Redis) does not answer, the limits are counted in
        this process instead for ``FALLBACK_S`` before Redis is tried again: each replica
        then enforces the whole limit on its own (at most replicas times the limit in all) — the
        service stays up through a Redis outage rather than refusing every request."""
        if self.local is not None:
            self._hit_local(self.local, identity)
            return
        if time.monotonic() < self.shared_down_until:
            self._hit_local(self.fallback, identity)
            return
        try:
            for item in self.items:
                if not self.limiter.hit(item, identity):
                    stats = self.limiter.get_window_stats(item, identity)
                    raise self._refused(item, stats.reset_time - time.time())
        except StorageError:
            self.shared_down_until = time.monotonic() + FALLBACK_S
            self._hit_local(self.fallback, identity)

    def _hit_local(self, windows: list[LocalWindows], identity: str) -> None:
        for item, counters in zip(self.items, windows, strict=True):
            wait = counters.hit(identity)
            if wait is not None:
                raise self._refused(item, wait)

    @property
    def degraded(self) -> bool:
        """Counting in this process because the shared storage is away."""
        return time.monotonic() < self.shared_down_until

    def _refused(self, item: RateLimitItem, wait: float) -> RateLimited:
        retry = max(1, math.ceil(wait))
        return RateLimited(f"rate limit {item} exceeded for {self.subject}", retry, limit=self.name)

    def check_storage(self) -> bool:
        return True if self.local is not None else bool(self.storage.check())
