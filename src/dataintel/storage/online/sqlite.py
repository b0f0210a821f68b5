"""The embedded OnlineStore: columnar tiles in SQLite, decoded entities in an in-process LRU.

Layout (``sqlite_layout``): per (project, entity key) a table with one row per (entity,
level, tile), the state fields as columns. ``apply`` merges a micro-batch by one ``INSERT …
ON CONFLICT DO UPDATE`` executemany per partial group (``sqlite_merge``) and records the
batch's end positions in the SAME transaction (WAL, ``synchronous=FULL``: once it returns,
a crash does not lose it), so state and positions never disagree. Only after COMMIT are the
touched entities dropped from the cache (one set operation per group), so a reader never
sees a half-applied batch; a cache miss rebuilds the entity's blobs from its rows (one
primary-key range scan), and blobs are never mutated once cached, so callers must treat
the blobs they read as read-only.

Trimming is lazy: tiles no window can read are harmless (``tiles.window_state`` never reads
them), so expired rows are deleted, and expired day tiles of lifetime fields folded into
their base, by set-based statements every ``TRIM_EVERY_US`` of processor clock per family;
only a late day tile that already lies under a base is folded by the batch that brings it.

Concurrency: writers (the processor's worker thread, backfill) are serialised by one lock
and use their own connection; reads never wait for a write transaction: a cache hit only
takes short locks, a miss reads a consistent snapshot through a second connection (WAL
readers do not block on the writer) and is cached only if nothing was published meanwhile.
Other processes may write the same file (a separate ``dataintel worker``): their changes are
seen through a change log (``sqlite_cache.ChangeLog``) before every read and write.

An entity with no write for ``ttl_seconds`` is absent (its rows are gone, like an expired
Redis key); a write to it starts afresh. Expired entities are purged set-wise.
"""

# Table and column names are generated from integers (t<id>, d<id>, s<k>, …), never from
# user text; values are always bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow.compute as pc

from dataintel.model.aggregations import Aggregation
from dataintel.storage.online import sqlite_batch
from dataintel.storage.online.codec import DEFAULT_CACHE_MB, Blob
from dataintel.storage.online.port import (
    ApplyOutcome,
    BatchValue,
    BatchValues,
    EntityRef,
    OnlineStore,
    PartialGroup,
    StateField,
)
from dataintel.storage.online.sqlite_cache import SCHEMA as CHANGES_SCHEMA
from dataintel.storage.online.sqlite_cache import ChangeLog, Entity, EntityCache, Touched
from dataintel.storage.online.sqlite_layout import BASE, META, Family, Layout
from dataintel.storage.online.sqlite_layout import SCHEMA as LAYOUT_SCHEMA
from dataintel.storage.online.sqlite_merge import entity_blobs, merge_group, trim

_SCHEMA = """
CREATE TABLE IF NOT EXISTS positions (partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS built (
    project_id TEXT NOT NULL, field TEXT NOT NULL, PRIMARY KEY (project_id, field));
"""
_COMMIT = (
    "INSERT INTO positions VALUES (?, ?) ON CONFLICT (partition) DO UPDATE "
    "SET next_offset = max(next_offset, excluded.next_offset)"
)
PURGE_EVERY_SECONDS = 60.0
TRIM_EVERY_US = 30_000_000  # processor clock between two trims of a family


class SQLiteOnline(OnlineStore):
    kind = "embedded"

    def __init__(
        self,
        path: str,
        ttl_seconds: int,
        *,
        cache_bytes: int = DEFAULT_CACHE_MB << 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        memory = path == ":memory:" or path.startswith("file::memory:")
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA cache_size=-131072")
        self._db.execute("PRAGMA secure_delete=ON")  # freed bytes are zeroed (GDPR erasure)
        self._db.executescript(_SCHEMA + LAYOUT_SCHEMA + CHANGES_SCHEMA + sqlite_batch.SCHEMA)
        self._write_lock = threading.Lock()
        # An in-memory database is private to its connection: reads then share the writer's.
        self._memory = memory
        self._reader = self._db if memory else _connect(path)
        self._read_lock = self._write_lock if memory else threading.Lock()
        self._cache = EntityCache(cache_bytes)
        self._changes = ChangeLog(self._db, self._cache)
        self._layout = Layout()
        self._ttl = float(ttl_seconds)
        self._clock = clock
        self._purged = clock()
        self._oldest: dict[int, float] = {}  # family → a lower bound of its last writes
        self._trimmed: dict[int, int] = {}  # family → processor clock of its last trim

    # --- writes -------------------------------------------------------------------------

    def apply(self, groups: Sequence[PartialGroup], ends: Mapping[int, int]) -> ApplyOutcome:
        outcome = ApplyOutcome()
        groups = [g for g in groups if g.table.num_rows]
        if not groups and not ends:
            return outcome
        now = self._clock()
        touched: list[Touched] = []
        with self._write_lock:
            with self._rolled_back(), _transaction(self._db):
                self._changes.sync(self._db)
                db = self._db
                for group in groups:
                    family = self._layout.ensure(
                        db, group.project_id, group.entity_key, group.fields
                    )
                    ids = [str(i) for i in pc.unique(group.table["entity"]).to_pylist()]
                    touched.extend(self._expire(family, ids, now))
                    merge_group(db, family, group, now)
                    touched.append((group.project_id, group.entity_key, ids))
                    outcome.applied += len(ids)
                    trimmed = self._trimmed.get(family.id)
                    if trimmed is None or group.now_us - trimmed >= TRIM_EVERY_US:
                        trim(db, family, group.now_us)
                        self._trimmed[family.id] = group.now_us
                if ends:
                    db.executemany(_COMMIT, list(ends.items()))
                seq = self._changes.record(db, touched, now) if touched else 0
            self._invalidate(touched, seq)
            self._maybe_purge(now)
        return outcome

    def replace(
        self, states: Mapping[EntityRef, Mapping[str, Blob]], fields: Sequence[StateField]
    ) -> None:
        states = {ref: blobs for ref, blobs in states.items() if blobs}  # as Redis: no key
        if not states:
            return
        specs = {f.name: f for f in fields}
        by_family: dict[tuple[str, str], list[EntityRef]] = defaultdict(list)
        for ref in states:
            by_family[(ref.project_id, ref.entity_key)].append(ref)
        now = self._clock()
        touched: list[Touched] = []
        with self._write_lock:
            with self._rolled_back(), _transaction(self._db):
                self._changes.sync(self._db)
                for (project_id, entity_key), refs in by_family.items():
                    names = {n for ref in refs for n in states[ref]}
                    family = self._layout.ensure(
                        self._db, project_id, entity_key, [specs[n] for n in sorted(names)]
                    )
                    ids = [ref.entity_id for ref in refs]
                    touched.extend(self._expire(family, ids, now))
                    for ref in refs:
                        _write_blobs(self._db, family, ref.entity_id, states[ref], now)
                    touched.append((project_id, entity_key, ids))
                seq = self._changes.record(self._db, touched, now)
            self._invalidate(touched, seq)

    def commit(self, positions: Mapping[int, int]) -> None:
        with self._write_lock, _transaction(self._db):
            self._db.executemany(_COMMIT, list(positions.items()))

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
        by_family: dict[tuple[str, str], list[str]] = defaultdict(list)
        for ref in refs:
            by_family[(ref.project_id, ref.entity_key)].append(ref.entity_id)
        found = 0
        touched: list[Touched] = []
        with self._write_lock:
            with _transaction(self._db):
                self._changes.sync(self._db)
                sqlite_batch.delete(self._db, refs)
                for (project_id, entity_key), ids in by_family.items():
                    family = self._layout.find(self._db, project_id, entity_key)
                    if family is None:
                        continue
                    alive = self._db.execute(
                        f"SELECT count(*) FROM {family.tiles} WHERE level = {META} AND tile = 0 "
                        "AND w >= ? AND entity_id IN (SELECT value FROM json_each(?))",
                        (now - self._ttl, _json(ids)),
                    ).fetchone()[0]
                    found += int(alive)
                    _delete(self._db, family, ids)
                    touched.append((project_id, entity_key, ids))
                seq = self._changes.record(self._db, touched, now) if touched else 0
            self._invalidate(touched, seq)
        return found

    def scrub(self) -> None:
        """The change log names the entities of recent writes: its rows become "everything
        changed" markers (other processes clear their caches); then the file is rebuilt
        (VACUUM: ``secure_delete`` misses the copies page rebuilds leave in unallocated
        space) and a TRUNCATE checkpoint empties the write-ahead log."""
        with self._write_lock:
            with _transaction(self._db):
                self._changes.blank(self._db)
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- reads --------------------------------------------------------------------------

    def read(self, refs: Sequence[EntityRef], fields: Sequence[str]) -> list[dict[str, Blob]]:
        if not self._memory:
            with self._read_lock:
                self._changes.sync_reader(self._reader)
        found, misses, generation = self._cache.lookup(refs)
        if misses:
            with self._read_lock, _transaction(self._reader, "BEGIN"):
                loaded = [(refs[i], self._fetch(self._reader, refs[i], fields)) for i in misses]
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

    def write_batch(self, run: BatchValues) -> bool:
        with self._write_lock, _transaction(self._db):
            return sqlite_batch.write(self._db, run)

    def read_batch(
        self, refs: Sequence[EntityRef], fields: Sequence[str]
    ) -> list[dict[str, BatchValue]]:
        if not refs or not fields:
            return [{} for _ in refs]
        with self._read_lock, _transaction(self._reader, "BEGIN"):
            return sqlite_batch.read(self._reader, refs, fields)

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

    # --- internals ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _rolled_back(self) -> Iterator[None]:
        """What this process knows of the layout may be ahead of a rolled-back transaction
        (a table or column it created): forget it then, it is reloaded from the file."""
        try:
            yield
        except BaseException:
            self._layout.forget()
            self._oldest.clear()
            raise

    def _fetch(
        self, db: sqlite3.Connection, ref: EntityRef, fields: Sequence[str]
    ) -> Entity | None:
        family = self._layout.find(db, ref.project_id, ref.entity_key)
        if family is None:
            return None
        if any(f not in family.fields for f in fields):
            self._layout.reload(db, family)  # another process may have added fields
        try:
            cur = db.execute(f"SELECT * FROM {family.tiles} WHERE entity_id = ?", (ref.entity_id,))
        except sqlite3.OperationalError:  # created by a write this snapshot does not see
            return None
        rows = cur.fetchall()
        if not rows:
            return None
        distinct = db.execute(
            f"SELECT level, tile, col, value FROM {family.distinct} WHERE entity_id = ?",
            (ref.entity_id,),
        ).fetchall()
        blobs, written = entity_blobs(family, cur.description, rows, distinct)
        if written is None:
            return None
        return Entity(blobs, float(written))

    def _expire(self, family: Family, ids: Sequence[str], now: float) -> list[Touched]:
        """Writer lock held: delete the rows of ``ids`` whose entity expired (it starts
        afresh). Only looked up while some entity of the family may have expired."""
        horizon = now - self._ttl
        oldest = self._oldest.get(family.id)
        if oldest is None:
            row = self._db.execute(
                f"SELECT min(w) FROM {family.tiles} WHERE level = {META}"
            ).fetchone()
            oldest = self._oldest[family.id] = now if row[0] is None else float(row[0])
        if oldest >= horizon:
            return []
        expired = [
            str(i)
            for (i,) in self._db.execute(
                f"SELECT m.entity_id FROM json_each(?) j JOIN {family.tiles} m "
                f"ON m.entity_id = j.value AND m.level = {META} AND m.tile = 0 WHERE m.w < ?",
                (_json(ids), horizon),
            ).fetchall()
        ]
        if not expired:
            return []
        _delete(self._db, family, expired)
        return [(family.project_id, family.entity_key, expired)]

    def _invalidate(self, touched: Sequence[Touched], seq: int) -> None:
        for project_id, entity_key, ids in touched:
            self._cache.forget_ids(project_id, entity_key, ids)
        if seq:
            self._changes.committed(seq)

    def _maybe_purge(self, now: float) -> None:
        """Writer lock held: every ``PURGE_EVERY_SECONDS``, delete every expired entity
        (set-based, per family) and prune the change log."""
        if now - self._purged < PURGE_EVERY_SECONDS:
            return
        self._purged = now
        horizon = now - self._ttl
        touched: list[Touched] = []
        with _transaction(self._db):
            for family in self._layout.families(self._db):
                ids = [
                    str(i)
                    for (i,) in self._db.execute(
                        f"SELECT entity_id FROM {family.tiles} WHERE level = {META} AND w < ?",
                        (horizon,),
                    ).fetchall()
                ]
                if ids:
                    _delete(self._db, family, ids)
                    touched.append((family.project_id, family.entity_key, ids))
                row = self._db.execute(
                    f"SELECT min(w) FROM {family.tiles} WHERE level = {META}"
                ).fetchone()
                self._oldest[family.id] = now if row[0] is None else float(row[0])
            seq = self._changes.record(self._db, touched, now) if touched else 0
            ChangeLog.prune(self._db, now)
        self._invalidate(touched, seq)


def _json(values: Sequence[Any]) -> str:
    return orjson.dumps(list(values)).decode()


def _delete(db: sqlite3.Connection, family: Family, ids: Sequence[str]) -> None:
    for table in (family.tiles, family.distinct):
        db.executemany(f"DELETE FROM {table} WHERE entity_id = ?", [(i,) for i in ids])


def _write_blobs(
    db: sqlite3.Connection, family: Family, entity_id: str, blobs: Mapping[str, Blob], now: float
) -> None:
    """Overwrite the entity's state of each field with a whole blob (backfill, recompute)."""
    db.execute(
        f"INSERT INTO {family.tiles} (entity_id, level, tile, w) VALUES (?, {META}, 0, ?) "
        "ON CONFLICT (entity_id, level, tile) DO UPDATE SET w = excluded.w",
        (entity_id, now),
    )
    for name, blob in blobs.items():
        column = family.fields[name]
        k, agg, cols = column.k, column.spec.aggregation, column.states
        cleared = ", ".join(f"{c} = NULL" for c in (*cols, f"l{k}", f"e{k}"))
        db.execute(f"UPDATE {family.tiles} SET {cleared} WHERE entity_id = ?", (entity_id,))
        db.execute(f"DELETE FROM {family.distinct} WHERE entity_id = ? AND col = ?", (entity_id, k))
        db.execute(
            f"UPDATE {family.tiles} SET l{k} = ?, e{k} = ? WHERE entity_id = ? "
            f"AND level = {META} AND tile = 0",
            (blob.get("l"), blob.get("e"), entity_id),
        )
        placed: list[tuple[int, int, Any]] = [
            (int(level), int(start), state)
            for level, found in (blob.get("t") or {}).items()
            for start, state in found.items()
            if state is not None
        ]
        if blob.get("b") is not None:
            placed.append((BASE, 0, blob["b"]))
        if agg is Aggregation.COUNT_DISTINCT:
            db.executemany(
                f"INSERT OR IGNORE INTO {family.distinct} VALUES (?, ?, ?, {k}, ?)",
                [(entity_id, lv, a, str(v)) for lv, a, state in placed for v in state],
            )
            continue
        marks = ", ".join("?" for _ in cols)
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
        db.executemany(
            f"INSERT INTO {family.tiles} (entity_id, level, tile, {', '.join(cols)}) "
            f"VALUES (?, ?, ?, {marks}) ON CONFLICT (entity_id, level, tile) DO UPDATE SET {sets}",
            [(entity_id, lv, a, *_state_values(agg, state)) for lv, a, state in placed],
        )


def _state_values(agg: Aggregation, state: Any) -> tuple[Any, ...]:
    if agg is Aggregation.AVG:
        return (state[0], state[1])
    if agg in (Aggregation.FIRST, Aggregation.LAST):
        return (state[0], state[1], orjson.dumps(state[2]).decode())
    return (state,)


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
