"""The Redis store's batch feature values: one hash per (project, entity key, field).

``<prefix>:b:{<project>|<entity key>|<field>}`` maps entity id → msgpack value;
``<prefix>:bm:{…}`` (same hash tag, so the same Cluster slot) holds the stored run's time
and the value of an entity it did not find. A run is written to a key of its own first and
then RENAMEd over the live one with the metadata in one MULTI, so a reader sees one run or
the other. ``<prefix>:bi:{<project>}`` lists a project's batch keys (GDPR erasure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import redis

from dataintel.storage.online.codec import pack, unpack
from dataintel.storage.online.port import BatchValue, BatchValues, EntityRef

CHUNK = 10_000


def _part(text: str) -> str:
    return quote(text, safe="")


class RedisBatch:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def _tag(self, project_id: str, entity_key: str, field: str) -> str:
        return "|".join(_part(p) for p in (project_id, entity_key, field))

    def _index(self, project_id: str) -> str:
        return f"{self._prefix}:bi:{{{_part(project_id)}}}"

    def write(self, run: BatchValues) -> bool:
        tag = self._tag(run.project_id, run.entity_key, run.field)
        live, meta = f"{self._prefix}:b:{{{tag}}}", f"{self._prefix}:bm:{{{tag}}}"
        stored = self._client.hget(meta, "at")
        if stored is not None and int(stored) > run.computed_at:
            return False
        staging = f"{live}:{run.computed_at}"
        items = list(run.values.items())
        pipe = self._client.pipeline(transaction=False)
        pipe.delete(staging)
        for start in range(0, len(items), CHUNK):
            chunk = items[start : start + CHUNK]
            pipe.hset(staging, mapping={e: pack(v) for e, v in chunk})
        pipe.execute()
        swap = self._client.pipeline(transaction=True)
        if items:
            swap.rename(staging, live)
        else:
            swap.delete(live)
        swap.hset(meta, mapping={"at": run.computed_at, "empty": pack(run.empty)})
        swap.execute()
        self._client.sadd(self._index(run.project_id), f"{run.entity_key}|{run.field}")
        return True

    def read(self, refs: Sequence[EntityRef], fields: Sequence[str]) -> list[dict[str, BatchValue]]:
        out: list[dict[str, BatchValue]] = [{} for _ in refs]
        if not refs or not fields:
            return out
        groups: dict[tuple[str, str, str], list[int]] = {}
        for i, ref in enumerate(refs):
            for field in fields:
                groups.setdefault((ref.project_id, ref.entity_key, field), []).append(i)
        pipe = self._client.pipeline(transaction=False)
        order = list(groups.items())
        for (project_id, key, field), indexes in order:
            tag = self._tag(project_id, key, field)
            pipe.hmget(f"{self._prefix}:bm:{{{tag}}}", ["at", "empty"])
            pipe.hmget(f"{self._prefix}:b:{{{tag}}}", [refs[i].entity_id for i in indexes])
        results: list[Any] = pipe.execute()
        for n, ((_, _, field), indexes) in enumerate(order):
            at, empty = results[2 * n]
            if at is None:
                continue
            for i, raw in zip(indexes, results[2 * n + 1], strict=True):
                value = unpack(empty) if raw is None else unpack(raw)
                out[i][field] = BatchValue(value, int(at))
        return out

    def delete(self, refs: Sequence[EntityRef]) -> None:
        """Forget the entities' values (GDPR erasure)."""
        projects = sorted({r.project_id for r in refs})
        pipe = self._client.pipeline(transaction=False)
        for project_id in projects:
            pipe.smembers(self._index(project_id))
        members = dict(zip(projects, pipe.execute(), strict=True))
        pipe = self._client.pipeline(transaction=False)
        for ref in refs:
            for raw in members[ref.project_id]:
                key, field = (raw.decode() if isinstance(raw, bytes) else str(raw)).split("|", 1)
                if key == ref.entity_key:
                    tag = self._tag(ref.project_id, key, field)
                    pipe.hdel(f"{self._prefix}:b:{{{tag}}}", ref.entity_id)
        pipe.execute()
