"""The breaker proxy around a port: outages count and open it, a caller's error is raised as
is and never counts, an open breaker refuses at once, and the first success after its ttl
closes it — for sync and async methods (the quiet fast path and the bookkeeping path)."""

from __future__ import annotations

import asyncio
import time

import pytest

from dataintel.storage.breakers import BackendFailed, BackendUnavailable, Breakers


class Port:
    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    def read(self, bad: bool = False) -> str:
        self.calls += 1
        if bad:
            raise ValueError("a bad query")
        if self.down:
            raise ConnectionRefusedError("refused")
        return "ok"

    async def aread(self, bad: bool = False) -> str:
        return self.read(bad)


def test_sync_outages_open_the_breaker_and_a_success_after_the_ttl_closes_it() -> None:
    breakers = Breakers(threshold=3, ttl_seconds=0.2)
    port = Port()
    guarded = breakers.guarded(port, "online")
    assert guarded.read() == "ok"
    for _ in range(5):  # a caller's error: raised as it is, never counted
        with pytest.raises(ValueError, match="bad query"):
            guarded.read(bad=True)
    assert breakers.quiet("online")
    port.down = True
    for n in range(3):
        with pytest.raises(BackendFailed, match="online backend failed"):
            guarded.read()
        assert breakers.state("online") == ("opened" if n == 2 else "closed")
    calls = port.calls
    with pytest.raises(BackendUnavailable) as refused:
        guarded.read()
    assert port.calls == calls  # refused without calling the backend
    assert refused.value.retry_after >= 1
    port.down = False
    time.sleep(0.25)
    assert guarded.read() == "ok"
    assert breakers.state("online") == "closed"
    assert breakers.quiet("online")


def test_a_success_between_outages_resets_the_count() -> None:
    breakers = Breakers(threshold=2, ttl_seconds=30)
    port = Port()
    guarded = breakers.guarded(port, "analytics")
    port.down = True
    with pytest.raises(BackendFailed):
        guarded.read()
    assert not breakers.quiet("analytics")
    port.down = False
    assert guarded.read() == "ok"
    assert breakers.quiet("analytics")
    port.down = True
    with pytest.raises(BackendFailed):
        guarded.read()
    assert breakers.state("analytics") == "closed"  # 1 of 2, not 2 of 2


def test_async_methods_are_guarded_the_same_way() -> None:
    breakers = Breakers(threshold=2, ttl_seconds=30)
    port = Port()
    guarded = breakers.guarded(port, "online")

    async def scenario() -> None:
        assert await guarded.aread() == "ok"
        with pytest.raises(ValueError, match="bad query"):
            await guarded.aread(bad=True)
        port.down = True
        for _ in range(2):
            with pytest.raises(BackendFailed):
                await guarded.aread()
        with pytest.raises(BackendUnavailable):
            await guarded.aread()

    asyncio.run(scenario())
    assert breakers.state("online") == "opened"
