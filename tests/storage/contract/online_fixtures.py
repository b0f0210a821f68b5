"""Fixtures and builders for the OnlineStore contract suite (tests/storage/contract/test_online.py).

``stores`` opens stores of one adapter: the embedded one on a SQLite file under ``tmp_path``
with an injectable clock, Redis on the test server with a key prefix of its own (removed
afterwards). ``Reference`` is the pure-Python meaning of a merge: ``tiles.apply_partial`` (and,
for Redis' per-entity updates, the position rule), against which both adapters are checked.
Updates are written as ``EntityUpdate``s and sent to the embedded store as the port's partial
groups (``to_groups``: one group per update and field, in order).

The embedded store trims lazily (tiles no window reads may stay until its next trim, expired
day tiles fold into the lifetime base then), so ``check`` compares blobs after trimming both
with the latest cuts the model saw (``tiles.trim``), distinct keys as sets and floats of a
lifetime base to the last bits (the fold may add them in another order).
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pyarrow as pa
import pytest
from hypothesis import strategies as st

from dataintel.model.aggregations import Aggregation
from dataintel.model.tiles import (
    SIZES,
    TOP,
    apply_partial,
    cutoffs,
    keeps,
    merge,
    trim,
    window_specs,
)
from dataintel.storage.online.port import (
    ApplyOutcome,
    EntityRef,
    EntityUpdate,
    FeatureUpdate,
    OnlineStore,
    PartialGroup,
    StateField,
)
from dataintel.storage.online.redis import RedisOnline
from dataintel.storage.online.registry import open_online
from dataintel.storage.online.sqlite import SQLiteOnline
from tests.conftest import REDIS_URL, require_service

Blob = dict[str, Any]
SECOND = 1_000_000
DAY = 86_400 * SECOND
T0 = 1_700_000_000 * SECOND - (1_700_000_000 * SECOND) % DAY  # a UTC midnight, 2023-11-14
NO_CUTS = (-(2**52),) * 5  # nothing is old enough to be dropped
TTL = 3600
AGGS = list(Aggregation)
Event = tuple[int, str, Any]  # (ts µs, event_id, field value)


def redis_host_port() -> tuple[str, int]:
    parts = urlsplit(REDIS_URL)
    return parts.hostname or "127.0.0.1", parts.port or 6379


class FakeClock:
    """Seconds since the epoch, moved by hand (the embedded store's TTL clock)."""

    def __init__(self, now: float = T0 / SECOND) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Stores:
    """Opens stores of one adapter over the same storage; closes (and cleans) them after."""

    kind: str
    path: Path
    prefix: str
    clock: FakeClock = field(default_factory=FakeClock)
    opened: list[OnlineStore] = field(default_factory=list)

    def open(self, ttl_seconds: int = TTL) -> OnlineStore:
        store: OnlineStore
        if self.kind == "embedded":
            store = SQLiteOnline(str(self.path), ttl_seconds, clock=self.clock)
        else:
            store = open_online(f"{REDIS_URL}?prefix={self.prefix}", ttl_seconds)
        self.opened.append(store)
        return store

    def reopen(self, store: OnlineStore) -> OnlineStore:
        store.close()
        self.opened.remove(store)
        return self.open()

    def redis(self) -> Any:
        import redis

        return redis.Redis.from_url(REDIS_URL)

    def cleanup(self) -> None:
        for store in self.opened:
            store.close()
        if self.kind == "redis":
            client = self.redis()
            keys = list(client.scan_iter(f"{self.prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()


def open_stores(kind: str, tmp_path: Path) -> Stores:
    if kind == "redis":
        require_service("Redis", *redis_host_port())
    name = f"{kind}-{uuid.uuid4().hex[:8]}"
    return Stores(kind, tmp_path / f"{name}.db", f"ditest-online-{uuid.uuid4().hex[:12]}")


@pytest.fixture(name="stores", params=["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def stores_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    holder = open_stores(str(request.param), tmp_path)
    yield holder
    holder.cleanup()


@pytest.fixture(name="store")
def store_fixture(stores: Stores) -> OnlineStore:
    return stores.open()


@pytest.fixture(name="redis_store")
def redis_store_fixture(tmp_path: Path) -> Iterator[RedisOnline]:
    """Redis only: its per-entity positions (skip a replay, report a conflict)."""
    holder = open_stores("redis", tmp_path)
    store = holder.open()
    assert isinstance(store, RedisOnline)
    yield store
    holder.cleanup()


@pytest.fixture(name="both")
def both_fixture(tmp_path: Path) -> Iterator[tuple[OnlineStore, OnlineStore]]:
    """One embedded and one Redis store, for the three-way property test."""
    embedded, redis = open_stores("embedded", tmp_path), open_stores("redis", tmp_path)
    try:
        yield embedded.open(), redis.open()
    finally:
        embedded.cleanup()
        redis.cleanup()


# --- builders -----------------------------------------------------------------------------


def entity(project: str = "p1", key: str = "user_id", entity_id: str | None = None) -> EntityRef:
    return EntityRef(project, key, entity_id or f"u-{uuid.uuid4().hex[:10]}")


def fu(
    agg: Aggregation,
    tiles: Mapping[str, Mapping[int, Any]],
    last_ts: int | None = None,
    cuts: Sequence[int] = NO_CUTS,
    lifetime: bool = False,
) -> FeatureUpdate:
    starts = [a for found in tiles.values() for a in found]
    last = last_ts if last_ts is not None else max(starts, default=T0)
    return FeatureUpdate(
        agg,
        {level: dict(found) for level, found in tiles.items()},
        last,
        tuple(cuts),
        lifetime,
    )


def update(
    ref: EntityRef, lo: int, hi: int, features: Mapping[str, FeatureUpdate], partition: int = 0
) -> EntityUpdate:
    return EntityUpdate(ref, partition, lo, hi, dict(features))


KEEP = (0,) * len(SIZES)  # with now = the top cut: tiles.cutoffs gives that cut


def spec(name: str, agg: Aggregation, lifetime: bool = False) -> StateField:
    return StateField(name, agg, KEEP, lifetime)


def to_groups(updates: Sequence[EntityUpdate], exact_cuts: bool = False) -> list[PartialGroup]:
    """The port's partial groups of ``updates``: one per (update, field), in order. With
    ``exact_cuts`` each field's keep gives exactly the update's cuts at every level (else
    the top cut at all levels, which the embedded store's trims take)."""
    out = []
    for u in updates:
        for name, f in u.features.items():
            rows = [
                (int(level), start, state)
                for level, tiles in f.tiles.items()
                for start, state in tiles.items()
            ]
            columns: dict[str, Any] = {
                "entity": pa.array([u.ref.entity_id] * len(rows), pa.string()),
                "log_partition": [u.partition] * len(rows),
                "level": [r[0] for r in rows],
                "tile": [r[1] for r in rows],
                "lo": [u.first_offset] * len(rows),
                "hi": [u.last_offset] * len(rows),
                "last_t": [f.last_ts] * len(rows),
            }
            states = [r[2] for r in rows]
            agg = f.aggregation
            if agg is Aggregation.AVG:
                columns["a0"] = [None if s is None else s[0] for s in states]
                columns["b0"] = [None if s is None else s[1] for s in states]
            elif agg in (Aggregation.FIRST, Aggregation.LAST):
                columns["a0"] = [None if s is None else s[0] for s in states]
                columns["b0"] = pa.array([None if s is None else s[1] for s in states], pa.string())
                columns["c0"] = [None if s is None else orjson.dumps(s[2]).decode() for s in states]
            elif agg is Aggregation.COUNT_DISTINCT:
                columns["a0"] = pa.array(states, pa.list_(pa.string()))
            else:
                columns["a0"] = states
            table = pa.table(columns)
            field_spec, now = spec(name, agg, f.lifetime), f.cuts[TOP]
            if exact_cuts:
                now = max(f.cuts)
                field_spec = StateField(name, agg, tuple(now - c for c in f.cuts), f.lifetime)
            out.append(PartialGroup(u.ref.project_id, u.ref.entity_key, (field_spec,), table, now))
    return out


def apply_each(store: RedisOnline, updates: Sequence[EntityUpdate]) -> ApplyOutcome:
    """Redis: each update as the partial groups of one micro-batch, in order (so several
    updates of one entity meet the per-entity position rule one after the other)."""
    outcome = ApplyOutcome()
    for u in updates:
        one = store.apply(to_groups([u], exact_cuts=True), {})
        outcome.applied += one.applied
        outcome.skipped += one.skipped
        outcome.conflicts += one.conflicts
    return outcome


def put(store: OnlineStore, updates: Sequence[EntityUpdate]) -> ApplyOutcome:
    """Apply updates without a model: Redis per entity (positions), embedded as groups."""
    if isinstance(store, RedisOnline):
        return apply_each(store, updates)
    return store.apply(to_groups(updates), {})


@dataclass
class Reference:
    """A merge in pure Python: ``tiles.apply_partial`` per feature, under Redis' per-entity
    position rule when ``positions`` (the embedded store has none: its caller filters)."""

    blobs: dict[EntityRef, dict[str, Blob]] = field(default_factory=dict)
    offsets: dict[tuple[EntityRef, int], int] = field(default_factory=dict)
    fields: dict[str, tuple[Aggregation, bool, tuple[int, ...]]] = field(default_factory=dict)

    def apply(
        self, updates: Sequence[EntityUpdate], positions: bool = True
    ) -> tuple[int, int, list[tuple[EntityRef, int, int]]]:
        """(applied, skipped, [(entity, partition, stored offset) of each conflict])."""
        applied, skipped, conflicts = 0, 0, []
        self.applied: list[EntityUpdate] = []
        for u in updates:
            stored = self.offsets.get((u.ref, u.partition)) if positions else None
            if stored is not None and stored >= u.last_offset:
                skipped += 1
                continue
            if stored is not None and stored >= u.first_offset:
                conflicts.append((u.ref, u.partition, stored))
                continue
            self.applied.append(u)
            blobs = self.blobs.setdefault(u.ref, {})
            for name, f in u.features.items():
                blobs[name] = apply_partial(
                    f.aggregation,
                    copy.deepcopy(blobs.get(name)),
                    copy.deepcopy(f.tiles),
                    f.last_ts,
                    f.cuts,
                    f.lifetime,
                )
                seen = self.fields.get(name)
                cuts = f.cuts if seen is None else tuple(map(max, seen[2], f.cuts))
                self.fields[name] = (f.aggregation, f.lifetime, cuts)
            self.offsets[(u.ref, u.partition)] = max(
                u.last_offset, self.offsets.get((u.ref, u.partition), -1)
            )
            applied += 1
        return applied, skipped, conflicts

    def read(self, ref: EntityRef, fields: Sequence[str]) -> dict[str, Blob]:
        found = self.blobs.get(ref, {})
        return {f: found[f] for f in fields if f in found}


def summary(outcome: ApplyOutcome) -> tuple[int, int, list[Any]]:
    """An outcome in the shape of ``Reference.apply``'s."""
    return (
        outcome.applied,
        outcome.skipped,
        [(c.ref, c.partition, c.stored_offset) for c in outcome.conflicts],
    )


def event_state(agg: Aggregation, ts: int, event_id: str, value: Any) -> Any:
    if agg is Aggregation.COUNT:
        return 1
    if agg is Aggregation.SUM or agg is Aggregation.MIN or agg is Aggregation.MAX:
        return value
    if agg is Aggregation.AVG:
        return [value, 1]
    if agg is Aggregation.COUNT_DISTINCT:
        return [str(value)]
    return [ts, event_id, value]  # FIRST / LAST


def partial(agg: Aggregation, events: Sequence[Event]) -> dict[str, dict[int, Any]]:
    """The partial tiles of some events at every level (what the processor builds)."""
    out: dict[str, dict[int, Any]] = {}
    for ts, event_id, value in events:
        state = event_state(agg, ts, event_id, value)
        for level, size in enumerate(SIZES):
            tiles = out.setdefault(str(level), {})
            start = ts - ts % size
            tiles[start] = merge(agg, tiles.get(start), state)
    return out


def events(n: int, start: int = T0, step: int = 7_654_321, seed: int = 0) -> list[Event]:
    return [
        (start + i * step, f"e{seed}-{i:04d}", round(0.1 * (i + seed) + 0.01 * (i % 7), 6))
        for i in range(n)
    ]


def normal(model: Reference, name: str, blob: Blob) -> Blob:
    """``blob`` trimmed with the latest cuts the model saw for the field, distinct keys as
    sorted lists (what any window evaluated from then on reads)."""
    agg, lifetime, cuts = model.fields[name]
    out = copy.deepcopy(blob)
    trim(agg, out, cuts, lifetime)
    if agg is Aggregation.COUNT_DISTINCT:
        out["t"] = {lv: {a: sorted(s) for a, s in found.items()} for lv, found in out["t"].items()}
        out["b"] = None if out["b"] is None else sorted(out["b"])
    return out


def same(a: Any, b: Any) -> bool:
    """Equal, floats to the last few bits (a lifetime base may be folded in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, str) or isinstance(b, str):
            return False
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
    return bool(a == b)


def check(
    store: OnlineStore, ref_model: Reference, refs: Sequence[EntityRef], fields: list[str]
) -> None:
    got = store.read(refs, fields)
    for ref, found in zip(refs, got, strict=True):
        want = ref_model.read(ref, fields)
        assert found.keys() == want.keys()
        for name, blob in want.items():
            left, right = normal(ref_model, name, found[name]), normal(ref_model, name, blob)
            assert same(left, right), (name, left, right)


def run(store: OnlineStore, model: Reference, updates: list[EntityUpdate]) -> None:
    if isinstance(store, RedisOnline):
        outcome = apply_each(store, updates)
        assert summary(outcome) == model.apply(updates)
    else:
        model.apply(updates, positions=False)
        store.apply(to_groups(updates), {})


# --- random update streams (the property test) ---------------------------------------------

EVENT_IDS = st.sampled_from(["a", "b", "B", "é", "e1", "e10", "\u20ac"])
VALUES = st.one_of(
    st.floats(-1e9, 1e9, allow_nan=False, allow_subnormal=False),
    st.integers(-1000, 1000),
    st.sampled_from([0.1, 0.2, 0.3, 1e-300, 2.5e15]),
)
FIRST_LAST_VALUES = st.one_of(VALUES, st.sampled_from(["x", "", "ü", True, False]))
WINDOWS = ["30s", "90s", "5m", "1h", "12000s", "24h", "7d", "30d"]


@st.composite
def streams(draw: st.DrawFn) -> tuple[Aggregation, list[list[EntityUpdate]]]:
    agg = draw(st.sampled_from(AGGS))
    lifetime = draw(st.booleans())
    windows = window_specs("f", draw(st.lists(st.sampled_from(WINDOWS), min_size=1, max_size=3)))
    keep = keeps(windows)
    # A field name stands for one aggregation (a feature version): a family per kind.
    ref = entity(project=f"p-{agg.value}-{lifetime}")
    values = FIRST_LAST_VALUES if agg in (Aggregation.FIRST, Aggregation.LAST) else VALUES
    now = T0 + draw(st.integers(0, DAY))
    offsets = {0: 0, 1: 0}
    batches: list[list[EntityUpdate]] = []
    for _ in range(draw(st.integers(1, 6))):
        batch: list[EntityUpdate] = []
        for _ in range(draw(st.integers(1, 3))):
            now += draw(st.sampled_from([0, SECOND, 61 * SECOND, 3 * 3600 * SECOND, 2 * DAY]))
            n = draw(st.integers(1, 6))
            evs = [
                (
                    now
                    - draw(st.sampled_from([0, 1, 999, SECOND, 3600 * SECOND, 3 * DAY, 40 * DAY])),
                    draw(EVENT_IDS),
                    draw(values),
                )
                for _ in range(n)
            ]
            partition = draw(st.integers(0, 1))
            mode = draw(st.sampled_from(["next", "next", "next", "replay", "overlap"]))
            lo = offsets[partition] + 1
            if mode == "replay" and offsets[partition] > 0:
                lo = max(1, offsets[partition] - n)
                hi = offsets[partition]
            elif mode == "overlap" and offsets[partition] > 0:
                lo, hi = offsets[partition], offsets[partition] + n
            else:
                hi = lo + n - 1
            offsets[partition] = max(offsets[partition], hi)
            tiles = partial(agg, evs)
            feature = fu(agg, tiles, max(ts for ts, _, _ in evs), cutoffs(keep, now), lifetime)
            batch.append(update(ref, lo, hi, {"f@1": feature}, partition))
        batches.append(batch)
    return agg, batches
