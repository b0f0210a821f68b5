"""The embedded OnlineStore: decoded blobs in an in-process LRU cache, durable in SQLite.

``apply`` is ONE SQLite transaction (WAL, ``synchronous=FULL``: once it returns, a crash does
not lose it) for the whole micro-batch: blobs, per-entity positions and last-write times
commit together or not at all. Only after COMMIT are the new entities published to the cache,
each replaced as a whole, so a reader never sees a half-applied update; blobs are never
mutated once published (``apply_partial`` works on a copy), so callers must treat the blobs
they read as read-only.

Concurrency: writers (the processor's worker thread, backfill) are serialised by one lock
and use their own connection; reads never wait for a write transaction: a cache hit only
takes short locks, a miss reads a consistent snapshot through a second connection (WAL
readers do not block on the writer) and is cached only if nothing was published meanwhile.
Other processes may write the same file (a separate ``dataintel worker``): their changes are
seen through a change log (``sqlite_cache.ChangeLog``) before every read and write.

The cache is bounded by tiles (``cache_tiles``), least recently used first out. An entity
with no write for ``ttl_seconds`` is absent (like an expired Redis key: its blobs and
positions are gone); expired rows are purged in bounded sweeps from ``apply``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from dataintel.model.tiles import apply_partial
from dataintel.storage.online.codec import Blob, copy_blob, pack, unpack_blob
from dataintel.storage.online.port import (
    ApplyOutcome,
    Conflict,
    EntityRef,
    EntityUpdate,
    OnlineStore,
)
from dataintel.storage.online.sqlite_cache import SCHEMA as CHANGES_SCHEMA
from dataintel.storage.online.sqlite_cache import ChangeLog, Entity, EntityCache

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
_BLOBS = "SELECT field, blob FROM blobs WHERE project_id = ? AND entity_key = ? AND entity_id = ?"
_OFFSETS = (
    "SELECT partition, last_offset FROM entity_offsets "
    "WHERE project_id = ? AND entity_key = ? AND entity_id = ?"
)
_WRITTEN = (
    "SELECT written_at FROM entity_writes WHERE project_id = ? AND entity_key = ? AND entity_id = ?"
)
_WIPE = (
    "DELETE FROM blobs WHERE project_id = ? AND entity_key = ? AND entity_id = ?",
    "DELETE FROM entity_offsets WHERE project_id = ? AND entity_key = ? AND entity_id = ?",
)
_FORGET = "DELETE FROM entity_writes WHERE project_id = ? AND entity_key = ? AND entity_id = ?"
_PUT_BLOB = "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?)"
_PUT_OFFSET = "INSERT OR REPLACE INTO entity_offsets VALUES (?, ?, ?, ?, ?)"
_PUT_WRITTEN = "INSERT OR REPLACE INTO entity_writes VALUES (?, ?, ?, ?)"
PURGE_EVERY_SECONDS = 60.0
PURGE_BATCH = 5_000  # expired entities deleted per sweep (bounds the pause of one apply)


class SQLiteOnline(OnlineStore):
    kind = "embedded"

    def __init__(
        self,
        path: str,
        ttl_seconds: int,
        *,
        cache_tiles: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        memory = path == ":memory:" or path.startswith("file::memory:")
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA + CHANGES_SCHEMA)
        self._write_lock = threading.Lock()
        # An in-memory database is private to its connection: reads then share the writer's.
        self._memory = memory
        self._reader = self._db if memory else _connect(path)
        self._read_lock = self._write_lock if memory else threading.Lock()
        self._cache = EntityCache(cache_tiles)
        self._changes = ChangeLog(self._db, self._cache)
        self._ttl = float(ttl_seconds)
        self._clock = clock
        self._purged = clock()

    # --- writes -------------------------------------------------------------------------

    def apply(self, updates: Sequence[EntityUpdate]) -> ApplyOutcome:
        outcome = ApplyOutcome()
        if not updates:
            return outcome
        now = self._clock()
        with self._write_lock:
            staged: dict[EntityRef, Entity] = {}
            changed: dict[tuple[EntityRef, str], Blob] = {}
            offsets: list[tuple[str, str, str, int, int]] = []
            wipe: set[EntityRef] = set()
            with _transaction(self._db):
                self._changes.sync(self._db)
                for update in updates:
                    ref = update.ref
                    entity = staged.get(ref) or self._writable(ref, now, wipe)
                    stored = entity.offsets.get(update.partition)
                    if stored is not None and stored >= update.last_offset:
                        outcome.skipped += 1
                        continue
                    if stored is not None and stored >= update.first_offset:
                        outcome.conflicts.append(Conflict(update, stored))
                        continue
                    blobs = entity.blobs
                    for name, fu in update.features.items():
                        old = blobs.get(name)
                        blobs[name] = changed[(ref, name)] = apply_partial(
                            fu.aggregation,
                            None if old is None else copy_blob(old),
                            fu.tiles,
                            fu.last_ts,
                            fu.cuts,
                            fu.lifetime,
                        )
                    entity.offsets[update.partition] = update.last_offset
                    offsets.append((*_key(ref), update.partition, update.last_offset))
                    staged[ref] = entity
                    outcome.applied += 1
                self._wipe(r for r in wipe if r in staged)
                db = self._db
                db.executemany(
                    _PUT_BLOB,
                    [(*_key(ref), name, pack(blob)) for (ref, name), blob in changed.items()],
                )
                db.executemany(_PUT_OFFSET, offsets)
                db.executemany(_PUT_WRITTEN, [(*_key(ref), now) for ref in staged])
                seq = self._changes.record(db, staged, now) if staged else 0
            self._published(staged, seq)
            self._maybe_purge(now)
        return outcome

    def replace(self, states: Mapping[EntityRef, Mapping[str, Blob]]) -> None:
        states = {ref: blobs for ref, blobs in states.items() if blobs}  # as Redis: no key
        if not states:
            return
        now = self._clock()
        with self._write_lock:
            staged: dict[EntityRef, Entity] = {}
            wipe: set[EntityRef] = set()
            with _transaction(self._db):
                self._changes.sync(self._db)
                rows = []
                for ref, blobs in states.items():
                    entity = self._writable(ref, now, wipe)
                    for name, blob in blobs.items():
                        data = pack(blob)
                        entity.blobs[name] = unpack_blob(data)  # what a reload would give
                        rows.append((*_key(ref), name, data))
                    staged[ref] = entity
                self._wipe(wipe)
                self._db.executemany(_PUT_BLOB, rows)
                self._db.executemany(_PUT_WRITTEN, [(*_key(ref), now) for ref in staged])
                seq = self._changes.record(self._db, staged, now)
            self._published(staged, seq)

    def commit(self, positions: Mapping[int, int]) -> None:
        with self._write_lock, _transaction(self._db):
            self._db.executemany(
                "INSERT INTO positions VALUES (?, ?) ON CONFLICT (partition) DO UPDATE "
                "SET next_offset = max(next_offset, excluded.next_offset)",
                list(positions.items()),
            )

    def mark_built(self, project_id: str, fields: Sequence[str]) -> None:
        with self._write_lock, _transaction(self._db):
            self._db.executemany(
                "INSERT OR IGNORE INTO built VALUES (?, ?)", [(project_id, f) for f in fields]
            )

    def unmark_built(self, project_id: str, fields: Sequence[str]) -> None:
        with self._write_lock, _transaction(self._db):
            self._db.executemany(
                "DELETE FROM built WHERE project_id = ? AND field = ?",
                [(project_id, f) for f in fields],
            )

    def delete_entities(self, refs: Sequence[EntityRef]) -> int:
        if not refs:
            return 0
        now = self._clock()
        with self._write_lock:
            return self._delete(refs, now)

    # --- reads --------------------------------------------------------------------------

    def read(self, refs: Sequence[EntityRef], fields: Sequence[str]) -> list[dict[str, Blob]]:
        if not self._memory:
            with self._read_lock:
                self._changes.sync_reader(self._reader)
        found, misses, generation = self._cache.lookup(refs)
        if misses:
            with self._read_lock, _transaction(self._reader, "BEGIN"):
                loaded = [(refs[i], _fetch(self._reader, refs[i])) for i in misses]
            self._cache.offer(loaded, generation)
            for i, (_, entity) in zip(misses, loaded, strict=True):
                found[i] = entity
        horizon = self._clock() - self._ttl
        out: list[dict[str, Blob]] = []
        for entity in found:
            if entity is None or entity.written_at < horizon:
                out.append({})
            else:
                blobs = entity.blobs
                out.append({f: blobs[f] for f in fields if f in blobs})
        return out

    def positions(self) -> dict[int, int]:
        with self._read_lock:
            rows = self._reader.execute("SELECT partition, next_offset FROM positions").fetchall()
        return {int(p): int(n) for p, n in rows}

    def built(self, project_id: str) -> set[str]:
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT field FROM built WHERE project_id = ?", (project_id,)
            ).fetchall()
        return {str(f) for (f,) in rows}

    def ping(self) -> None:
        with self._read_lock:
            self._reader.execute("SELECT 1").fetchall()

    def close(self) -> None:
        with self._write_lock:
            if self._reader is not self._db:
                with self._read_lock:
                    self._reader.close()
            self._db.close()
        self._cache.clear()

    # --- internals (writer lock held) ---------------------------------------------------

    def _writable(self, ref: EntityRef, now: float, wipe: set[EntityRef]) -> Entity:
        """A private copy of the entity's current state (inside the write transaction); an
        expired entity starts empty and is put in ``wipe`` so its old rows go."""
        entity = self._cache.get(ref) or _fetch(self._db, ref)
        if entity is None:
            return Entity({}, {}, now)
        if entity.written_at < now - self._ttl:
            wipe.add(ref)
            return Entity({}, {}, now)
        return Entity(dict(entity.blobs), dict(entity.offsets), now)

    def _wipe(self, refs: Iterable[EntityRef]) -> None:
        for statement in _WIPE:
            self._db.executemany(statement, [_key(ref) for ref in refs])

    def _delete(self, refs: Sequence[EntityRef], now: float) -> int:
        """Delete entities; counts those that had not expired."""
        horizon = now - self._ttl
        found = 0
        with _transaction(self._db):
            self._changes.sync(self._db)
            for ref in refs:
                row = self._db.execute(_WRITTEN, _key(ref)).fetchone()
                if row is not None and row[0] >= horizon:
                    found += 1
            self._wipe(refs)
            self._db.executemany(_FORGET, [_key(ref) for ref in refs])
            seq = self._changes.record(self._db, refs, now)
        self._cache.forget(refs)
        self._changes.committed(seq)
        return found

    def _published(self, staged: Mapping[EntityRef, Entity], seq: int) -> None:
        self._cache.publish(staged)
        if seq:
            self._changes.committed(seq)

    def _maybe_purge(self, now: float) -> None:
        if now - self._purged < PURGE_EVERY_SECONDS:
            return
        expired = self._db.execute(
            "SELECT project_id, entity_key, entity_id FROM entity_writes WHERE written_at < ? "
            "LIMIT ?",
            (now - self._ttl, PURGE_BATCH),
        ).fetchall()
        if len(expired) < PURGE_BATCH:
            self._purged = now  # else sweep on, one batch per apply
        if expired:
            self._delete([EntityRef(*row) for row in expired], now)
        with _transaction(self._db):
            ChangeLog.prune(self._db, now)


class _transaction:  # noqa: N801 (used like a function: ``with _transaction(db):``)
    """BEGIN (IMMEDIATE for writers) … COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> None:
        self._db = db
        self._begin = begin

    def __enter__(self) -> None:
        self._db.execute(self._begin)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            try:
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        elif self._db.in_transaction:
            self._db.execute("ROLLBACK")


def _connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=30,
        uri=path.startswith("file:"),
    )


def _fetch(db: sqlite3.Connection, ref: EntityRef) -> Entity | None:
    key = _key(ref)
    written = db.execute(_WRITTEN, key).fetchone()
    if written is None:
        return None
    blobs = {str(f): unpack_blob(b) for f, b in db.execute(_BLOBS, key).fetchall()}
    offsets = {int(p): int(o) for p, o in db.execute(_OFFSETS, key).fetchall()}
    return Entity(blobs, offsets, float(written[0]))


def _key(ref: EntityRef) -> tuple[str, str, str]:
    return (ref.project_id, ref.entity_key, ref.entity_id)
