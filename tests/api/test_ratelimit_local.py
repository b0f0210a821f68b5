"""The in-process rate limiter (memory://) decides exactly as `limits`' sliding window
counter on its memory storage, with the same Retry-After, and starts no thread."""

from __future__ import annotations

import math
import random
import threading
import time

import pytest
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from dataintel.api.ratelimit import RateLimiter
from dataintel.errors import RateLimited


def _reference(limit: str) -> tuple[list, SlidingWindowCounterRateLimiter]:  # type: ignore[type-arg]
    return parse_many(limit), SlidingWindowCounterRateLimiter(MemoryStorage())


def _reference_hit(items: list, limiter: SlidingWindowCounterRateLimiter, who: str) -> int | None:  # type: ignore[type-arg]
    """What the previous implementation did: None when allowed, else Retry-After."""
    for item in items:
        if not limiter.hit(item, who):
            stats = limiter.get_window_stats(item, who)
            return max(1, math.ceil(stats.reset_time - time.time()))
    return None


def _ours(limiter: RateLimiter, who: str) -> int | None:
    try:
        limiter.hit(who)
    except RateLimited as exc:
        return int(exc.headers["Retry-After"])
    return None


@pytest.mark.parametrize("limit", ["5/second", "7/minute;3/second", "2/second;5/minute"])
def test_decisions_and_retry_after_equal_limits_memory_storage(
    monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    clock = {"now": 1_767_225_600.25}
    monkeypatch.setattr(time, "time", lambda: clock["now"])
    items, reference = _reference(limit)
    ours = RateLimiter(limit, "memory://")
    rng = random.Random(3)
    refused = 0
    for step in range(600):
        clock["now"] += rng.choice([0.0, 0.0, 0.0, 0.001, 0.01, 0.05, 0.2, 0.7, 1.3, 30.0])
        who = rng.choice(["key:a", "key:b"])
        want = _reference_hit(items, reference, who)
        got = _ours(ours, who)
        assert got == want, (step, clock["now"], who, got, want)
        refused += want is not None
    assert refused > 20  # the sequence does exercise refusals


def test_memory_limiter_starts_no_thread() -> None:
    limiter = RateLimiter("1000000/second", "memory://")
    before = set(threading.enumerate())
    for i in range(2000):
        limiter.hit(f"key:{i % 7}")
        if i % 100 == 0:
            time.sleep(0.011)  # limits' memory storage re-armed a Timer about this often
    assert set(threading.enumerate()) - before == set()
