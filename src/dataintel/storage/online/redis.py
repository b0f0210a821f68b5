"""The Redis OnlineStore: one hash per entity, one Lua script per (entity, partition) a batch
touches.

Key ``<prefix>:e:{<project>|<entity key>|<entity id>}``: the braces make the whole key the
hash tag, so an entity lives in one Cluster slot. Fields ``<feature>@<version>`` hold msgpack
blobs, ``@<partition>`` the last applied log offset. ``apply`` cuts the partial groups into
one call per (entity, partition) (``redis_rows.entity_calls``: the entity's row slices) and
pipelines one EVALSHA per call (one round trip per micro-batch), then records the
positions; ``read`` one HMGET per entity (one round trip per request; decoded blobs are kept
by their bytes, ``codec.DecodeCache``, so re-reading an unchanged hot blob skips the
decode). ``aread``, the serving path, does the same with the async client in the event loop
(``redis_read.AsyncReader``). Every write refreshes the entity's TTL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import quote

import redis
from redis.exceptions import NoScriptError

from dataintel.storage.online.codec import DEFAULT_CACHE_MB, Blob, DecodeCache, pack
from dataintel.storage.online.port import (
    ApplyOutcome,
    BatchValue,
    BatchValues,
    Conflict,
    EntityRef,
    OnlineStore,
    PartialGroup,
    StateField,
)
from dataintel.storage.online.redis_batch import RedisBatch
from dataintel.storage.online.redis_read import AsyncReader
from dataintel.storage.online.redis_rows import entity_calls

_APPLY = resources.files("dataintel.storage.online").joinpath("apply.lua").read_text()
_COMMIT = """
for i = 1, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > current then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
"""


def _part(text: str) -> str:
    return quote(text, safe="")  # no '{', '}', '|' left inside the hash tag


@lru_cache(maxsize=65_536)
def _tag(ref: EntityRef) -> str:
    """The hash tag of an entity (cached: hot entities are keyed on every batch and read)."""
    return "|".join(_part(p) for p in (ref.project_id, ref.entity_key, ref.entity_id))


class RedisOnline(OnlineStore):
    kind = "redis"
    async_reads = True

    def __init__(
        self,
        url: str,
        prefix: str,
        ttl_seconds: int,
        *,
        decode_cache_bytes: int = DEFAULT_CACHE_MB << 20,
    ) -> None:
        self._client: redis.Redis = redis.Redis.from_url(url)
        self._decoder = DecodeCache(decode_cache_bytes)
        self._async = AsyncReader(url, self._decoder)
        self._prefix = prefix
        self._ttl_ms = ttl_seconds * 1000
        self._apply_sha = self._client.register_script(_APPLY).sha
        self._commit = self._client.register_script(_COMMIT)
        self._batch = RedisBatch(self._client, prefix)

    def key(self, ref: EntityRef) -> str:
        return f"{self._prefix}:e:{{{_tag(ref)}}}"

    def apply(self, groups: Sequence[PartialGroup], ends: Mapping[int, int]) -> ApplyOutcome:
        """Apply each (entity, partition) unless the entity has applied it (skipped) or part
        of it (a conflict with the stored offset), one Lua script each, one round trip; then
        record ``ends`` unless there was a conflict."""
        outcome = ApplyOutcome()
        calls = entity_calls(groups)
        if calls:
            head = [(c.partition, c.lo, c.hi, self._ttl_ms) for c in calls]
            argv = [(self.key(c.ref), [pack(h), *c.args]) for c, h in zip(calls, head, strict=True)]
            for call, result in zip(calls, self._evalsha(argv), strict=True):
                code = int(result[0])
                if code == 1:
                    outcome.applied += 1
                elif code == 0:
                    outcome.skipped += 1
                else:
                    outcome.conflicts.append(Conflict(call.ref, call.partition, int(result[1])))
        if not outcome.conflicts:
            self.commit(ends)
        return outcome

    def _evalsha(self, calls: Sequence[tuple[str, Sequence[bytes]]]) -> list[Any]:
        """One EVALSHA of the apply script per call, all in one round trip; when the server
        lacks the script (restart, SCRIPT FLUSH) it is loaded and the calls that failed (and
        so did nothing) are sent again."""
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            pipe = self._client.pipeline(transaction=False)
            for i in todo:
                key, args = calls[i]
                pipe.evalsha(self._apply_sha, 1, key, *args)
            missing = []
            for i, result in zip(todo, pipe.execute(raise_on_error=False), strict=True):
                results[i] = result
                if isinstance(result, NoScriptError):
                    missing.append(i)
            if not missing or attempt:
                break
            self._client.script_load(_APPLY)
            todo = missing
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def read(self, refs: Sequence[EntityRef], fields: Sequence[str]) -> list[dict[str, Blob]]:
        if not fields:
            return [{} for _ in refs]
        pipe = self._client.pipeline(transaction=False)
        for ref in refs:
            pipe.hmget(self.key(ref), list(fields))
        decode = self._decoder.decode
        out: list[dict[str, Blob]] = []
        for values in pipe.execute():
            out.append({f: decode(v) for f, v in zip(fields, values, strict=True) if v is not None})
        return out

    async def aread(
        self, refs: Sequence[EntityRef], fields: Sequence[str]
    ) -> list[dict[str, Blob]]:
        return await self._async.read([self.key(ref) for ref in refs], fields)

    async def abuilt(self, project_id: str) -> set[str]:
        return await self._async.members(self._built_key(project_id))

    def replace(
        self, states: Mapping[EntityRef, Mapping[str, Blob]], fields: Sequence[StateField]
    ) -> None:
        del fields  # a blob is stored whole, whatever its aggregation
        pipe = self._client.pipeline(transaction=False)
        for ref, blobs in states.items():
            if blobs:
                key = self.key(ref)
                pipe.hset(key, mapping={name: pack(blob) for name, blob in blobs.items()})
                pipe.pexpire(key, self._ttl_ms)
        pipe.execute()

    def positions(self) -> dict[int, int]:
        raw: dict[Any, Any] = self._client.hgetall(f"{self._prefix}:positions")
        return {int(p): int(n) for p, n in raw.items()}

    def commit(self, positions: Mapping[int, int]) -> None:
        if positions:
            args: list[int] = [x for pair in positions.items() for x in pair]
            self._commit(keys=[f"{self._prefix}:positions"], args=args)

    def built(self, project_id: str) -> set[str]:
        raw: set[Any] = self._client.smembers(self._built_key(project_id))
        return {m.decode() if isinstance(m, bytes) else str(m) for m in raw}

    def mark_built(self, project_id: str, fields: Sequence[str]) -> None:
        if fields:
            self._client.sadd(self._built_key(project_id), *fields)

    def unmark_built(self, project_id: str, fields: Sequence[str]) -> None:
        if fields:
            self._client.srem(self._built_key(project_id), *fields)

    def write_batch(self, run: BatchValues) -> bool:
        return self._batch.write(run)

    def read_batch(
        self, refs: Sequence[EntityRef], fields: Sequence[str]
    ) -> list[dict[str, BatchValue]]:
        return self._batch.read(refs, fields)

    async def aread_batch(
        self, refs: Sequence[EntityRef], fields: Sequence[str]
    ) -> list[dict[str, BatchValue]]:
        return await asyncio.to_thread(self._batch.read, refs, fields)

    def delete_entities(self, refs: Sequence[EntityRef]) -> int:
        if not refs:
            return 0
        self._batch.delete(refs)
        pipe = self._client.pipeline(transaction=False)
        for ref in refs:
            pipe.delete(self.key(ref))
        return sum(int(n) for n in pipe.execute())

    def scrub(self) -> None:
        """Deleted keys are gone from memory; an append-only file still holds their writes
        until it is rewritten, so rewrite it when the server keeps one (RDB snapshots are
        replaced whole by the next save)."""
        try:
            config = self._client.config_get("appendonly")
        except redis.ResponseError:  # CONFIG disabled (managed Redis): the operator's part
            return
        if config.get("appendonly") == "yes":
            self._client.bgrewriteaof()

    def ping(self) -> None:
        self._client.ping()

    def close(self) -> None:
        self._async.close()
        self._client.close()

    def _built_key(self, project_id: str) -> str:
        return f"{self._prefix}:built:{{{_part(project_id)}}}"
