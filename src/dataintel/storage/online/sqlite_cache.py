"""The embedded OnlineStore's in-process cache, and how it stays coherent across processes.

``EntityCache``: decoded entities, least recently used first out, bounded by their estimated
memory (``codec.blob_bytes`` of each of their blobs). ``generation`` moves whenever entries
are invalidated, so a reader that loaded a miss from an older snapshot does not cache it. A
batch invalidates the entities it touched per (project, entity key) with one set
intersection against the cached ids (``forget_ids``): no Python object per touched entity.

``ChangeLog``: another process may write the same SQLite file (``dataintel worker`` beside an
API with ``processor_enabled=false``, or a recompute from the API while the worker applies).
Every write transaction appends the entities it changed to the ``changes`` table (one row:
``[[project, entity key, [ids…]], …]``); before
reading (when ``PRAGMA data_version`` says another connection committed) and inside every
write transaction, a store drops from its cache the entities others changed. Rows are kept
``KEEP_SECONDS``; a store that fell further behind clears its whole cache.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from dataintel.storage.online.codec import Blob, blob_bytes, pack, unpack
from dataintel.storage.online.port import EntityRef

SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, refs BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS changes_at ON changes (at);
"""
KEEP_SECONDS = 60.0
ENTITY_BYTES = 400  # the cached entity beside its blobs: its key, its record, its dict


Touched = tuple[str, str, Sequence[str]]  # project, entity key, entity ids


class Entity:
    """One entity as cached: the blobs of its fields, last write (epoch s)."""

    __slots__ = ("blobs", "weight", "written_at")

    def __init__(self, blobs: dict[str, Blob], written_at: float) -> None:
        self.blobs = blobs
        self.written_at = written_at
        self.weight = 0  # set when cached


class EntityCache:
    def __init__(self, capacity_bytes: int) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        self._entries: OrderedDict[EntityRef, Entity] = OrderedDict()
        self._ids: dict[tuple[str, str], dict[str, EntityRef]] = {}  # cached refs by family
        self._weight = 0
        self._capacity = capacity_bytes

    def get(self, ref: EntityRef) -> Entity | None:
        with self.lock:
            return self._entries.get(ref)

    def lookup(self, refs: Sequence[EntityRef]) -> tuple[list[Entity | None], list[int], int]:
        """The cached entities (None for a miss), the indexes of the misses, the generation."""
        found: list[Entity | None] = []
        misses: list[int] = []
        with self.lock:
            entries = self._entries
            for i, ref in enumerate(refs):
                entity = entries.get(ref)
                if entity is None:
                    misses.append(i)
                else:
                    entries.move_to_end(ref)
                found.append(entity)
            return found, misses, self.generation

    def offer(self, loaded: Iterable[tuple[EntityRef, Entity | None]], generation: int) -> None:
        """Cache entities loaded from a snapshot taken at ``generation``, unless stale."""
        with self.lock:
            if generation != self.generation:
                return
            for ref, entity in loaded:
                if entity is not None and ref not in self._entries:
                    self._insert(ref, entity)
            self._evict()

    def forget_ids(self, project_id: str, entity_key: str, ids: Iterable[str]) -> None:
        with self.lock:
            cached = self._ids.get((project_id, entity_key))
            if cached:
                for entity_id in cached.keys() & set(ids):
                    self._drop(cached[entity_id])
            self.generation += 1

    def forget(self, refs: Iterable[EntityRef]) -> None:
        with self.lock:
            for ref in refs:
                self._drop(ref)
            self.generation += 1

    def clear(self) -> None:
        with self.lock:
            self._entries.clear()
            self._ids.clear()
            self._weight = 0
            self.generation += 1

    def _insert(self, ref: EntityRef, entity: Entity) -> None:
        entity.weight = ENTITY_BYTES + sum(blob_bytes(b) for b in entity.blobs.values())
        self._entries[ref] = entity
        self._weight += entity.weight
        self._ids.setdefault((ref.project_id, ref.entity_key), {})[ref.entity_id] = ref

    def _drop(self, ref: EntityRef) -> None:
        entity = self._entries.pop(ref, None)
        if entity is not None:
            self._weight -= entity.weight
            self._ids[(ref.project_id, ref.entity_key)].pop(ref.entity_id, None)

    def _evict(self) -> None:
        while self._weight > self._capacity and self._entries:
            ref, entity = self._entries.popitem(last=False)
            self._weight -= entity.weight
            self._ids[(ref.project_id, ref.entity_key)].pop(ref.entity_id, None)


class ChangeLog:
    """Which entities other connections changed since this store last looked."""

    def __init__(self, db: sqlite3.Connection, cache: EntityCache) -> None:
        self._cache = cache
        self._lock = threading.Lock()
        self._own: set[int] = set()  # our committed rows, not yet passed by ``_seen``
        self._seen = _last_seq(db)
        self._version: int | None = None

    def record(self, db: sqlite3.Connection, touched: Sequence[Touched], now: float) -> int:
        """In the writer's transaction: log the changed entities; returns the row's seq."""
        keys = [[p, k, list(ids)] for p, k, ids in touched]
        cur = db.execute("INSERT INTO changes (at, refs) VALUES (?, ?)", (now, pack(keys)))
        return int(cur.lastrowid or 0)

    def committed(self, seq: int) -> None:
        with self._lock:
            if seq > self._seen:
                self._own.add(seq)

    def sync_reader(self, db: sqlite3.Connection) -> None:
        """Before a read: look for foreign changes only if some connection committed."""
        version = int(db.execute("PRAGMA data_version").fetchone()[0])
        if version != self._version:
            self.sync(db)
            self._version = version

    def sync(self, db: sqlite3.Connection) -> None:
        """Drop from the cache what other connections changed (one consistent snapshot)."""
        with self._lock:
            seen = self._seen
        own_transaction = not db.in_transaction
        if own_transaction:
            db.execute("BEGIN")
        try:
            rows: list[tuple[int, bytes]] = db.execute(
                "SELECT seq, refs FROM changes WHERE seq > ? ORDER BY seq", (seen,)
            ).fetchall()
            last = _last_seq(db)
        finally:
            if own_transaction:
                db.execute("COMMIT")
        if last <= seen:
            return
        foreign: list[Any] = []
        with self._lock:
            gap = not rows or rows[0][0] != seen + 1  # rows pruned before we saw them
            for seq, refs in rows:
                if seq in self._own:
                    self._own.discard(seq)
                    continue
                keys = _keys(refs)
                if keys is None:  # blanked by an erasure: anything may have changed
                    gap = True
                else:
                    foreign.extend(keys)
            self._own = {s for s in self._own if s > last}
            self._seen = max(self._seen, last)
        if gap:
            self._cache.clear()
        else:
            for project_id, entity_key, ids in foreign:
                self._cache.forget_ids(project_id, entity_key, ids)

    @staticmethod
    def blank(db: sqlite3.Connection) -> None:
        """Replace every row's entities by the "everything changed" marker (erasure)."""
        db.execute("UPDATE changes SET refs = ?", (pack(None),))

    @staticmethod
    def prune(db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM changes WHERE at < ?", (now - KEEP_SECONDS,))


def _last_seq(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return 0 if row is None else int(row[0])


def _keys(data: bytes) -> list[Any] | None:
    keys: list[Any] | None = unpack(data)
    return keys
