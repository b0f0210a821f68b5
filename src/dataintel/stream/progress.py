"""How far the sinks have applied the log, and waiting for it (``?wait=processed``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from dataintel.api.ports import Port


class Progress:
    """Next unapplied offset per partition, as the processor of this process reports it, or
    as read from the sink when the processor runs elsewhere (``dataintel worker``)."""

    def __init__(self, read_positions: Callable[[], dict[int, int]] | None = None) -> None:
        self._next: dict[int, int] = {}
        self._changed = asyncio.Condition()
        self._read_positions = read_positions
        self.local = False  # True once a processor in this process reports

    async def advance(self, next_offsets: dict[int, int]) -> None:
        async with self._changed:
            self.local = True
            for partition, nxt in next_offsets.items():
                if nxt > self._next.get(partition, 0):
                    self._next[partition] = nxt
            self._changed.notify_all()

    def covers(self, written: dict[int, int]) -> bool:
        """Has every offset in ``written`` (last offset per partition) been applied?"""
        return all(self._next.get(p, 0) > off for p, off in written.items())

    def snapshot(self) -> dict[int, int]:
        return dict(self._next)

    async def wait_for(self, written: dict[int, int], timeout_s: float) -> bool:
        """Wait until ``written`` is applied; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while not self.covers(written):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not self.local and self._read_positions is not None:
                fresh = await asyncio.to_thread(self._read_positions)
                await self._merge(fresh)
                if self.covers(written):
                    return True
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))
        return True

    async def _merge(self, fresh: dict[int, int]) -> None:
        async with self._changed:
            for partition, nxt in fresh.items():
                if nxt > self._next.get(partition, 0):
                    self._next[partition] = nxt


PROGRESS: Port[Progress] = Port("progress", "no processor progress is visible from this process")
