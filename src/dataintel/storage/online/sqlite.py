"""The embedded OnlineStore: decoded blobs in an in-process LRU cache, durable in SQLite.

``apply`` is ONE SQLite transaction (WAL, ``synchronous=FULL``) for the whole micro-batch:
positions, tiles and the entities' last-write times commit together or not at all. Only
after COMMIT are the new blobs published to the cache (whole dicts replaced), so a reader
never sees a half-applied update. Reads come from the cache (a miss loads the entity from
SQLite). An entity with no write for ``ttl_seconds`` is treated as absent and purged.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from dataintel.features.tiles import apply_partial
from dataintel.storage.online.codec import Blob, copy_blob, pack, unpack_blob
from dataintel.storage.online.port import (
    ApplyOutcome,
    Conflict,
    EntityRef,
    EntityUpdate,
    OnlineStore,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    project_id TEXT NOT NULL, entity_key TEXT NOT NULL, entity_id TEXT NOT NULL,
    field TEXT NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY (project_id, entity_key, entity_id, field)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entity_offsets (
    project_id TEXT NOT NULL, entity_key TEXT NOT NULL, entity_id TEXT NOT NULL,
    partition INTEGER NOT NULL, last_offset INTEGER NOT NULL,
    PRIMARY KEY (project_id, entity_key, entity_id, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS entity_writes (
    project_id TEXT NOT NULL, entity_key TEXT NOT NULL, entity_id TEXT NOT NULL,
    written_at REAL NOT NULL,
    PRIMARY KEY (project_id, entity_key, entity_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_writes_at ON entity_writes (written_at);
CREATE TABLE IF NOT EXISTS positions (partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS built (
    project_id TEXT NOT NULL, field TEXT NOT NULL, PRIMARY KEY (project_id, field));
"""
_DELETE = (
    "DELETE FROM blobs WHERE project_id = ? AND entity_key = ? AND entity_id = ?",
    "DELETE FROM entity_offsets WHERE project_id = ? AND entity_key = ? AND entity_id = ?",
    "DELETE FROM entity_writes WHERE project_id = ? AND entity_key = ? AND entity_id = ?",
)
_OFFSET = (
    "SELECT last_offset FROM entity_offsets "
    "WHERE project_id = ? AND entity_key = ? AND entity_id = ? AND partition = ?"
)
_BLOBS = "SELECT field, blob FROM blobs WHERE project_id = ? AND entity_key = ? AND entity_id = ?"
_WRITTEN = (
    "SELECT written_at FROM entity_writes "
    "WHERE project_id = ? AND entity_key = ? AND entity_id = ?"
)
PURGE_EVERY_SECONDS = 60.0


class _Entity:
    """One cached entity: its blobs and, once known, when it was last written."""

    __slots__ = ("blobs", "written_at")

    def __init__(self, blobs: dict[str, Blob], written_at: float | None) -> None:
        self.blobs = blobs
        self.written_at = written_at


class SQLiteOnline(OnlineStore):
    kind = "embedded"

    def __init__(
        self,
        path: str,
        ttl_seconds: int,
        *,
        cache_entities: int = 200_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._ttl = float(ttl_seconds)
        self._clock = clock
        self._capacity = cache_entities
        self._cache: OrderedDict[EntityRef, _Entity] = OrderedDict()
        self._lock = threading.RLock()
        self._purged = clock()

    # --- writes -------------------------------------------------------------------------

    def apply(self, updates: Sequence[EntityUpdate]) -> ApplyOutcome:
        outcome = ApplyOutcome()
        if not updates:
            return outcome
        now = self._clock()
        with self._lock:
            published: dict[EntityRef, dict[str, Blob]] = {}
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for update in updates:
                    ref = update.ref
                    stored = self._offset(ref, update.partition)
                    if stored is not None and stored >= update.last_offset:
                        outcome.skipped += 1
                        continue
                    if stored is not None and stored >= update.first_offset:
                        outcome.conflicts.append(Conflict(update, stored))
                        continue
                    blobs = published.get(ref)
                    if blobs is None:
                        blobs = dict(self._load(ref, now).blobs)
                    for name, fu in update.features.items():
                        old = blobs.get(name)
                        blobs[name] = apply_partial(
                            fu.aggregation,
                            None if old is None else copy_blob(old),
                            fu.tiles,
                            fu.last_ts,
                            fu.cuts,
                            fu.lifetime,
                        )
                        db.execute(
                            "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?)",
                            (*_key(ref), name, pack(blobs[name])),
                        )
                    db.execute(
                        "INSERT OR REPLACE INTO entity_offsets VALUES (?, ?, ?, ?, ?)",
                        (*_key(ref), update.partition, update.last_offset),
                    )
                    published[ref] = blobs
                    outcome.applied += 1
                db.executemany(
                    "INSERT OR REPLACE INTO entity_writes VALUES (?, ?, ?, ?)",
                    [(*_key(ref), now) for ref in published],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            for ref, blobs in published.items():
                self._put(ref, _Entity(blobs, now))
            self._maybe_purge(now)
        return outcome

    def replace(self, states: Mapping[EntityRef, Mapping[str, Blob]]) -> None:
        if not states:
            return
        now = self._clock()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                merged: dict[EntityRef, dict[str, Blob]] = {}
                for ref, blobs in states.items():
                    current = dict(self._load(ref, now).blobs)
                    for name, blob in blobs.items():
                        current[name] = blob
                        db.execute(
                            "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?)",
                            (*_key(ref), name, pack(blob)),
                        )
                    db.execute(
                        "INSERT OR REPLACE INTO entity_writes VALUES (?, ?, ?, ?)",
                        (*_key(ref), now),
                    )
                    merged[ref] = current
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            for ref, blobs in merged.items():
                self._put(ref, _Entity(blobs, now))

    def commit(self, positions: Mapping[int, int]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT INTO positions VALUES (?, ?) ON CONFLICT (partition) DO UPDATE "
                "SET next_offset = max(next_offset, excluded.next_offset)",
                list(positions.items()),
            )

    def mark_built(self, project_id: str, fields: Sequence[str]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR IGNORE INTO built VALUES (?, ?)", [(project_id, f) for f in fields]
            )

    def delete_entities(self, refs: Sequence[EntityRef]) -> int:
        found = 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for ref in refs:
                    for statement in _DELETE:
                        cur = db.execute(statement, _key(ref))
                    found += cur.rowcount  # the last one: entity_writes
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            for ref in refs:
                self._cache.pop(ref, None)
        return found

    # --- reads --------------------------------------------------------------------------

    def read(self, refs: Sequence[EntityRef], fields: Sequence[str]) -> list[dict[str, Blob]]:
        now = self._clock()
        out: list[dict[str, Blob]] = []
        with self._lock:
            for ref in refs:
                blobs = self._load(ref, now).blobs
                out.append({f: blobs[f] for f in fields if f in blobs})
        return out

    def positions(self) -> dict[int, int]:
        with self._lock:
            rows = self._db.execute("SELECT partition, next_offset FROM positions").fetchall()
        return {int(p): int(n) for p, n in rows}

    def built(self, project_id: str) -> set[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT field FROM built WHERE project_id = ?", (project_id,)
            ).fetchall()
        return {str(f) for (f,) in rows}

    def ping(self) -> None:
        with self._lock:
            self._db.execute("SELECT 1").fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._cache.clear()

    # --- internals (hold the lock) ------------------------------------------------------

    def _offset(self, ref: EntityRef, partition: int) -> int | None:
        row = self._db.execute(
            _OFFSET,
            (*_key(ref), partition),
        ).fetchone()
        return None if row is None else int(row[0])

    def _load(self, ref: EntityRef, now: float) -> _Entity:
        entity = self._cache.get(ref)
        if entity is None:
            rows = self._db.execute(
                _BLOBS,
                _key(ref),
            ).fetchall()
            written = self._db.execute(
                _WRITTEN,
                _key(ref),
            ).fetchone()
            entity = _Entity(
                {str(f): unpack_blob(b) for f, b in rows}, None if written is None else written[0]
            )
            self._put(ref, entity)
        else:
            self._cache.move_to_end(ref)
        if entity.written_at is not None and entity.written_at < now - self._ttl:
            return _Entity({}, None)  # expired; purged on the next sweep
        return entity

    def _put(self, ref: EntityRef, entity: _Entity) -> None:
        self._cache[ref] = entity
        self._cache.move_to_end(ref)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)

    def _maybe_purge(self, now: float) -> None:
        if now - self._purged < PURGE_EVERY_SECONDS:
            return
        self._purged = now
        cutoff = now - self._ttl
        expired = self._db.execute(
            "SELECT project_id, entity_key, entity_id FROM entity_writes WHERE written_at < ?",
            (cutoff,),
        ).fetchall()
        if expired:
            self.delete_entities([EntityRef(*row) for row in expired])


def _key(ref: EntityRef) -> tuple[str, str, str]:
    return (ref.project_id, ref.entity_key, ref.entity_id)
