"""The Redis OnlineStore's serving reads: the async client (hiredis parser) in the event loop.

A request's blobs are one HMGET per entity, all in one round trip (one command for a single
entity, else a pipeline), awaited in the loop: no thread hop. Writes (the processor) keep
the sync client in ``redis.py``.

A client and its connections belong to the event loop that made them; the reader keeps one
client per running loop (an app serves from one loop; tests start a loop per client)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aredis

from dataintel.storage.online.codec import Blob, DecodeCache


class AsyncReader:
    def __init__(self, url: str, decoder: DecodeCache) -> None:
        self._url = url
        self._decoder = decoder
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aredis.Redis | None = None

    def client(self) -> aredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = aredis.Redis.from_url(self._url)
            self._loop = loop
        return self._client

    async def read(self, keys: Sequence[str], fields: Sequence[str]) -> list[dict[str, Blob]]:
        """Per key, in order, the decoded blobs of ``fields`` (absent fields left out)."""
        if not fields or not keys:
            return [{} for _ in keys]
        client = self.client()
        rows: list[list[Any]]
        if len(keys) == 1:
            rows = [await client.hmget(keys[0], list(fields))]
        else:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, list(fields))
            rows = await pipe.execute()
        decode = self._decoder.decode
        return [
            {f: decode(v) for f, v in zip(fields, row, strict=True) if v is not None}
            for row in rows
        ]

    async def members(self, key: str) -> set[str]:
        raw: set[Any] = await self.client().smembers(key)
        return {m.decode() if isinstance(m, bytes) else str(m) for m in raw}

    def close(self) -> None:
        """Close the client's connections on their loop when that loop still runs and this
        is another thread (the store is closed from a worker thread at shutdown); else they
        are dropped with the loop."""
        client, loop = self._client, self._loop
        self._client = self._loop = None
        if client is None or loop is None or loop.is_closed() or not loop.is_running():
            return
        try:
            if asyncio.get_running_loop() is loop:
                loop.create_task(client.aclose())
                return
        except RuntimeError:
            pass  # no loop in this thread
        try:
            asyncio.run_coroutine_threadsafe(client.aclose(), loop).result(timeout=2.0)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            return
