"""The OnlineStore contract: one suite, run on the embedded store (SQLite) and on Redis.

Whatever the adapter, a merge is ``tiles.apply_partial`` (float sums of tiles bit for bit), as
any window evaluated from then on sees it (the embedded store trims lazily: see
``online_fixtures.check``); ``apply`` records the batch's positions with the state; Redis'
per-entity updates skip a replay and report a conflict; reads return what was applied, per
project; positions only move forward; built markers, deletion and TTL behave the same. A
hypothesis test drives both adapters and the pure-Python fold with random update streams.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from dataintel.model.aggregations import Aggregation
from dataintel.model.tiles import SECOND, cutoffs, keeps, window_specs
from dataintel.storage.online.codec import DecodeCache, pack
from dataintel.storage.online.port import EntityRef, EntityUpdate, OnlineStore
from dataintel.storage.online.redis import RedisOnline
from dataintel.storage.online.registry import open_online
from dataintel.storage.online.sqlite import TRIM_EVERY_US, SQLiteOnline
from tests.storage.contract.online_fixtures import (  # noqa: F401 (fixtures)
    AGGS,
    DAY,
    T0,
    TTL,
    FakeClock,
    Reference,
    Stores,
    apply_each,
    both_fixture,
    check,
    entity,
    events,
    fu,
    normal,
    partial,
    put,
    redis_store_fixture,
    run,
    spec,
    store_fixture,
    stores_fixture,
    streams,
    summary,
    to_groups,
    update,
)

# --- apply, replay, conflict --------------------------------------------------------------


def test_apply_then_read_equals_the_python_fold(store: OnlineStore) -> None:
    model = Reference()
    users = [entity() for _ in range(3)]
    batch = [
        update(
            u,
            10 * i,
            10 * i + 4,
            {
                "n@1": fu(Aggregation.COUNT, partial(Aggregation.COUNT, events(5, seed=i))),
                "s@2": fu(Aggregation.SUM, partial(Aggregation.SUM, events(5, seed=i))),
            },
        )
        for i, u in enumerate(users)
    ]
    run(store, model, batch)
    later = [
        update(
            users[0],
            5,
            9,
            {"s@2": fu(Aggregation.SUM, partial(Aggregation.SUM, events(9, T0 + 1)))},
        )
    ]
    run(store, model, later)
    check(store, model, [*users, entity()], ["n@1", "s@2", "missing@1"])
    assert store.read([users[0]], []) == [{}]
    assert store.read([], ["n@1"]) == []


def test_a_replay_is_skipped_and_changes_nothing(redis_store: RedisOnline) -> None:
    store, model, ref = redis_store, Reference(), entity()
    first = update(ref, 0, 9, {"s@1": fu(Aggregation.SUM, partial(Aggregation.SUM, events(10)))})
    run(store, model, [first])
    before = store.read([ref], ["s@1"])
    replay = update(ref, 0, 9, {"s@1": fu(Aggregation.SUM, partial(Aggregation.SUM, events(10)))})
    outcome = apply_each(store, [replay])
    assert (outcome.applied, outcome.skipped, outcome.conflicts) == (0, 1, [])
    tail = update(ref, 5, 9, {"s@1": fu(Aggregation.SUM, partial(Aggregation.SUM, events(3)))})
    assert apply_each(store, [tail]).skipped == 1  # wholly at or before the stored offset
    assert store.read([ref], ["s@1"]) == before


def test_an_overlapping_update_is_a_conflict_with_the_stored_offset(
    redis_store: RedisOnline,
) -> None:
    store, model, ref = redis_store, Reference(), entity()
    run(store, model, [update(ref, 0, 9, {"n@1": fu(Aggregation.COUNT, {"4": {T0: 10}})})])
    overlap = update(ref, 5, 14, {"n@1": fu(Aggregation.COUNT, {"4": {T0: 10}})})
    outcome = apply_each(store, [overlap])
    assert outcome.applied == outcome.skipped == 0
    assert len(outcome.conflicts) == 1
    assert (outcome.conflicts[0].ref, outcome.conflicts[0].partition) == (ref, 0)
    assert outcome.conflicts[0].stored_offset == 9
    # ``apply`` (the groups) records no positions while conflicts remain
    assert store.apply(to_groups([overlap]), {0: 15}).conflicts
    assert store.positions() == {}
    assert store.read([ref], ["n@1"])[0]["n@1"]["t"] == {"4": {T0: 10}}
    # the caller recomputes from the entries after the stored offset
    run(store, model, [update(ref, 10, 14, {"n@1": fu(Aggregation.COUNT, {"4": {T0: 5}})})])
    assert store.read([ref], ["n@1"])[0]["n@1"]["t"] == {"4": {T0: 15}}


def test_partitions_of_one_entity_have_their_own_positions(redis_store: RedisOnline) -> None:
    store, model, ref = redis_store, Reference(), entity()
    a = partial(Aggregation.COUNT, events(3))
    batch = [
        update(ref, 0, 2, {"n@1": fu(Aggregation.COUNT, a)}, partition=0),
        update(ref, 0, 2, {"n@1": fu(Aggregation.COUNT, a)}, partition=1),  # not a replay
        update(ref, 100, 120, {"n@1": fu(Aggregation.COUNT, a)}, partition=2),
    ]
    run(store, model, batch)
    replays = [
        update(ref, 0, 2, {"n@1": fu(Aggregation.COUNT, a)}, partition=1),
        update(ref, 110, 130, {"n@1": fu(Aggregation.COUNT, a)}, partition=2),
        update(ref, 3, 3, {"n@1": fu(Aggregation.COUNT, a)}, partition=0),
    ]
    run(store, model, replays)
    check(store, model, [ref], ["n@1"])
    assert store.read([ref], ["n@1"])[0]["n@1"]["t"]["4"] == {T0: 12}


def test_updates_of_one_entity_in_one_batch_apply_in_order(store: OnlineStore) -> None:
    model, ref, other = Reference(), entity(), entity()
    s = Aggregation.SUM
    batch = [
        update(ref, 0, 4, {"s@1": fu(s, partial(s, events(5)))}),
        update(other, 0, 4, {"s@1": fu(s, partial(s, events(5, seed=3)))}),
        update(ref, 5, 9, {"s@1": fu(s, partial(s, events(5, seed=1)))}),
        update(ref, 5, 9, {"s@1": fu(s, partial(s, events(5, seed=1)))}),  # replay in-batch
        update(ref, 8, 12, {"s@1": fu(s, partial(s, events(5, seed=2)))}),  # conflict in-batch
    ]
    run(store, model, batch)
    check(store, model, [ref, other], ["s@1"])


def test_several_features_of_one_entity(store: OnlineStore) -> None:
    model, ref = Reference(), entity()
    evs = events(12)
    features = {f"{agg.value.lower()}@3": fu(agg, partial(agg, evs)) for agg in AGGS}
    run(store, model, [update(ref, 0, 11, features)])
    more = {f"{agg.value.lower()}@3": fu(agg, partial(agg, events(4, T0 + 17))) for agg in AGGS}
    run(store, model, [update(ref, 12, 15, more)])
    check(store, model, [ref], sorted(features))
    assert set(store.read([ref], [*features, "other@1"])[0]) == set(features)


# --- merge semantics ----------------------------------------------------------------------


@pytest.mark.parametrize("agg", AGGS, ids=[a.value for a in AGGS])
def test_every_aggregation_merges_exactly_like_python(store: OnlineStore, agg: Aggregation) -> None:
    model, ref = Reference(), entity()
    values: list[Any] = [0.1, 0.2, 0.7, 1e-17, 3, -2.5, 1e16, 0.30000000000000004]
    for i in range(4):
        evs = [
            (T0 + (j * 37 + i) * 1_000_003, f"e{(j * 5 + i) % 3}", values[(i + j) % len(values)])
            for j in range(6)
        ]
        if agg in (Aggregation.FIRST, Aggregation.LAST):  # ties on ts, decided by event_id
            evs.append((T0, f"e{9 - i}", f"tie-{i}"))
        run(store, model, [update(ref, 10 * i, 10 * i + 5, {"f@1": fu(agg, partial(agg, evs))})])
    check(store, model, [ref], ["f@1"])
    got = store.read([ref], ["f@1"])[0]["f@1"]
    want = model.read(ref, ["f@1"])["f@1"]
    if agg is not Aggregation.COUNT_DISTINCT:  # (distinct keys: as a set in SQLite)
        assert got == want
    if agg is Aggregation.SUM:  # float sums bit for bit, in the same order
        assert all(
            float(got["t"][lvl][a]).hex() == float(want["t"][lvl][a]).hex()
            for lvl in want["t"]
            for a in want["t"][lvl]
        )


def test_first_and_last_compare_event_ids_by_code_point(store: OnlineStore) -> None:
    """Ties on ts are broken by event_id in code point (= UTF-8 byte) order, never by locale."""
    model, ref = Reference(), entity()
    ids = ["b", "B", "é", "e", "Z", "ä", "a", "€", "a0", ""]
    for i, event_id in enumerate(ids):
        features = {
            "first@1": fu(Aggregation.FIRST, {"4": {T0: [T0 + 5, event_id, i]}}),
            "last@1": fu(Aggregation.LAST, {"4": {T0: [T0 + 5, event_id, i]}}),
            "lo@1": fu(Aggregation.MIN, {"4": {T0: event_id or "-"}}),
        }
        run(store, model, [update(ref, i, i, features)])
    got = store.read([ref], ["first@1", "last@1", "lo@1"])[0]
    assert got == model.read(ref, ["first@1", "last@1", "lo@1"])
    assert got["first@1"]["t"]["4"][T0][1] == min(ids)
    assert got["last@1"]["t"]["4"][T0][1] == max(ids)


def test_count_distinct_keeps_every_key_once(store: OnlineStore) -> None:
    model, ref = Reference(), entity()
    cd = Aggregation.COUNT_DISTINCT
    for i, keys in enumerate([["x", "a"], ["b", "x", "c"], ["a"], ["d", "1", "true"]]):
        run(store, model, [update(ref, i, i, {"d@1": fu(cd, {"4": {T0: keys}})})])
    check(store, model, [ref], ["d@1"])
    got = store.read([ref], ["d@1"])[0]["d@1"]["t"]["4"][T0]
    if not isinstance(store, RedisOnline):  # a set in SQLite (its primary key)
        assert sorted(got) == sorted(set(got)) == ["1", "a", "b", "c", "d", "true", "x"]
        return
    assert got == [
        "x",
        "a",
        "b",
        "c",
        "d",
        "1",
        "true",
    ]


def test_lifetime_base_collects_expired_days_and_late_partials(store: OnlineStore) -> None:
    model, ref = Reference(), entity()
    s = Aggregation.SUM
    days = [T0 + d * DAY for d in range(5)]
    day_tiles = {"4": {d: 0.1 * (i + 1) for i, d in enumerate(days)}}
    hour_tiles = {"3": {d + 3600 * SECOND: 0.5 for d in days}}
    run(
        store,
        model,
        [
            update(
                ref,
                0,
                9,
                {
                    "s@1": fu(s, {**day_tiles, **hour_tiles}, lifetime=True),
                    "x@1": fu(s, {**day_tiles, **hour_tiles}),
                },
            )
        ],
    )
    # the processor clock passes three days: they go into the base (lifetime) or away
    cuts = (days[3],) * 5
    run(
        store,
        model,
        [
            update(
                ref,
                10,
                10,
                {
                    "s@1": fu(s, {"4": {days[4]: 1.0}}, cuts=cuts, lifetime=True),
                    "x@1": fu(s, {"4": {days[4]: 1.0}}, cuts=cuts),
                },
            )
        ],
    )
    blob = store.read([ref], ["s@1"])[0]["s@1"]
    assert blob["e"] == days[3]
    assert blob["b"] == model.read(ref, ["s@1"])["s@1"]["b"]
    assert set(blob["t"]["4"]) == {days[3], days[4]}
    plain = store.read([ref], ["x@1"])[0]["x@1"]
    assert plain["b"] is None
    assert plain["e"] is None
    # late partials before base_end: day tiles merge into the base, finer tiles are dropped
    late = {"4": {days[0]: 2.0, days[1]: 4.0, days[3]: 8.0}, "3": {days[1]: 16.0, days[3]: 32.0}}
    run(
        store,
        model,
        [
            update(
                ref,
                11,
                11,
                {"s@1": fu(s, late, cuts=cuts, lifetime=True), "x@1": fu(s, late, cuts=cuts)},
            )
        ],
    )
    check(store, model, [ref], ["s@1", "x@1"])
    blob = store.read([ref], ["s@1"])[0]["s@1"]
    assert blob["b"] == pytest.approx(0.1 + 0.2 + 0.3 + 2.0 + 4.0)
    assert blob["t"]["4"][days[3]] == pytest.approx(0.4 + 8.0)
    assert days[1] not in normal(model, "s@1", blob)["t"].get("3", {})


def test_late_day_partials_merge_into_the_base(store: OnlineStore) -> None:
    """Late day tiles go to the base. Float addition is not associative: Redis takes them in
    the partial's order; the embedded store folds set-wise (equal to the last bits)."""
    model, ref = Reference(), entity()
    s, cd = Aggregation.SUM, Aggregation.COUNT_DISTINCT
    days = [T0 + d * DAY for d in range(8)]
    cuts = (days[6],) * 5
    first = {"s@1": fu(s, {"4": {days[6]: 1e16}}, cuts=cuts, lifetime=True),
             "d@1": fu(cd, {"4": {days[6]: ["z"]}}, cuts=cuts, lifetime=True)}  # fmt: skip
    run(store, model, [update(ref, 0, 0, first)])
    run(
        store,
        model,
        [
            update(
                ref,
                1,
                1,
                {
                    n: fu(f.aggregation, f.tiles, cuts=(days[7],) * 5, lifetime=True)
                    for n, f in first.items()
                },
            )
        ],
    )
    late_s = {days[5]: 1.0, days[0]: -1e16, days[3]: 1.0, days[1]: 3.0, days[4]: 1e16}
    late_d = {days[5]: ["q", "b"], days[0]: ["a", "q"], days[3]: ["c"], days[1]: ["b", "y"]}
    run(
        store,
        model,
        [
            update(
                ref,
                2,
                2,
                {
                    "s@1": fu(s, {"4": late_s}, cuts=cuts, lifetime=True),
                    "d@1": fu(cd, {"4": late_d}, cuts=cuts, lifetime=True),
                },
            )
        ],
    )
    check(store, model, [ref], ["s@1", "d@1"])
    got = store.read([ref], ["s@1", "d@1"])[0]
    if not isinstance(store, RedisOnline):  # set-based folds: same keys, sums to the last bits
        assert sorted(got["d@1"]["b"]) == ["a", "b", "c", "q", "y", "z"]
        return
    assert got == model.read(ref, ["s@1", "d@1"])
    assert float(got["s@1"]["b"]).hex() == float(model.read(ref, ["s@1"])["s@1"]["b"]).hex()
    assert got["d@1"]["b"] == ["z", "q", "b", "a", "c", "y"]


def test_tiles_are_trimmed_at_their_level_cutoffs(store: OnlineStore) -> None:
    model, ref = Reference(), entity()
    agg = Aggregation.MAX
    evs = [(T0 + i * 13 * SECOND + i, f"e{i}", float(i)) for i in range(20)]
    windows = window_specs("hi", ["30s", "5m", "1h"])
    now = T0 + 250 * SECOND
    cuts = cutoffs(keeps(windows), now)
    run(store, model, [update(ref, 0, 19, {"hi@1": fu(agg, partial(agg, evs), cuts=cuts)})])
    check(store, model, [ref], ["hi@1"])
    blob = normal(model, "hi@1", store.read([ref], ["hi@1"])[0]["hi@1"])
    assert all(a + 1 > cuts[0] for a in blob["t"].get("0", {}))  # only the recent µs tiles
    assert len(blob["t"]["0"]) < 20
    # a later clock drops the remaining µs tiles and their level disappears
    later = cutoffs(keeps(windows), now + 3600 * SECOND)
    run(store, model, [update(ref, 20, 20, {"hi@1": fu(agg, {"4": {T0: -1.0}}, cuts=later)})])
    check(store, model, [ref], ["hi@1"])
    raw = store.read([ref], ["hi@1"])[0]["hi@1"]
    assert "0" not in normal(model, "hi@1", raw)["t"]
    assert raw["l"] == max(ts for ts, _, _ in evs)
    if isinstance(store, RedisOnline):  # trimmed on every write
        assert raw == model.read(ref, ["hi@1"])["hi@1"]


def test_embedded_trims_expired_rows_set_wise(tmp_path: Path) -> None:
    """Every ``TRIM_EVERY_US`` of processor clock a family's expired rows are deleted and the
    expired day tiles of a lifetime field folded into its base, with the field's own keep."""
    store = SQLiteOnline(str(tmp_path / "o.db"), TTL)
    windows = window_specs("n", ["30s", "1h", "lifetime"])
    field = spec("n@1", Aggregation.COUNT, lifetime=True)
    field = type(field)(field.name, field.aggregation, keeps(windows), True)
    ref = entity()
    evs = [(T0 + i * 13 * SECOND, f"e{i}", 1) for i in range(20)]
    now = T0 + 250 * SECOND
    groups = to_groups(
        [update(ref, 0, 19, {"n@1": fu(Aggregation.COUNT, partial(Aggregation.COUNT, evs))})]
    )
    store.apply(
        [type(g)(g.project_id, g.entity_key, (field,), g.table, now) for g in groups], {0: 20}
    )
    before = store.read([ref], ["n@1"])[0]["n@1"]
    assert len(before["t"]["1"]) == 20
    later = now + 3 * DAY
    one = to_groups(
        [update(ref, 20, 20, {"n@1": fu(Aggregation.COUNT, {"4": {later - later % DAY: 1}})})]
    )
    store.apply(
        [type(g)(g.project_id, g.entity_key, (field,), g.table, later) for g in one], {0: 21}
    )
    after = store.read([ref], ["n@1"])[0]["n@1"]
    assert after["b"] == 20  # the expired day, in the base
    assert after["e"] == T0 + DAY
    assert set(after["t"]) == {"4"}  # the seconds, minutes and hours of that day are gone
    assert after["t"]["4"] == {later - later % DAY: 1}
    assert store.positions() == {0: 21}
    assert TRIM_EVERY_US <= 60 * SECOND
    store.close()


def test_tile_maps_with_small_integer_starts_stay_maps(store: OnlineStore) -> None:
    """Lua writes a table with keys 1..n as an array: tile starts must survive that."""
    model, ref = Reference(), entity()
    tiles = {"0": {1: 5, 2: 3, 3: 1}, "1": {0: 9}, "2": {}}
    run(store, model, [update(ref, 0, 0, {"n@1": fu(Aggregation.COUNT, tiles, last_ts=3)})])
    run(store, model, [update(ref, 1, 1, {"n@1": fu(Aggregation.COUNT, {"0": {2: 1}}, 2)})])
    assert store.read([ref], ["n@1"])[0]["n@1"] == {
        "t": {"0": {1: 5, 2: 4, 3: 1}, "1": {0: 9}},
        "b": None,
        "e": None,
        "l": 3,
    }


# --- replace, positions, built markers, tenants, deletion ---------------------------------


def test_replace_overwrites_whole_blobs_and_keeps_positions(store: OnlineStore) -> None:
    model, ref = Reference(), entity()
    c = Aggregation.COUNT
    run(
        store,
        model,
        [update(ref, 0, 9, {"a@1": fu(c, {"4": {T0: 1}}), "b@1": fu(c, {"4": {T0: 2}})})],
    )
    fresh = {"t": {"4": {T0: 40, T0 + DAY: 2}, "3": {T0 + DAY: 2}}, "b": 7, "e": T0, "l": T0 + DAY}
    other = entity()
    fields = [spec("a@1", c), spec("a@2", c)]
    store.replace({ref: {"a@1": fresh}, other: {"a@2": fresh}}, fields)
    got = store.read([ref, other], ["a@1", "b@1", "a@2"])
    assert got == [{"a@1": fresh, "b@1": model.read(ref, ["b@1"])["b@1"]}, {"a@2": fresh}]
    if isinstance(store, RedisOnline):  # the entity's own positions
        assert put(store, [update(ref, 0, 9, {"a@1": fu(c, {"4": {T0: 1}})})]).skipped == 1
    assert put(store, [update(ref, 10, 10, {"a@1": fu(c, {"4": {T0: 1}})})]).applied == 1
    assert store.read([ref], ["a@1"])[0]["a@1"]["t"]["4"] == {T0: 41, T0 + DAY: 2}
    store.replace({}, fields)
    ghost = entity()
    store.replace({ghost: {}}, fields)  # nothing to write: the entity does not come to exist
    assert store.delete_entities([ghost]) == 0


def test_positions_never_move_backwards(store: OnlineStore) -> None:
    assert store.positions() == {}
    store.commit({0: 10, 1: 5})
    store.commit({0: 7, 1: 6, 2: 0})
    assert store.positions() == {0: 10, 1: 6, 2: 0}
    store.commit({})
    assert store.positions() == {0: 10, 1: 6, 2: 0}
    store.apply([], {1: 4, 3: 2})
    assert store.positions() == {0: 10, 1: 6, 2: 0, 3: 2}


def test_apply_records_the_batch_positions_with_the_state(store: OnlineStore) -> None:
    model, a, b = Reference(), entity(), entity()
    c = Aggregation.COUNT
    batch = [update(r, 0, 4, {"n@1": fu(c, partial(c, events(5)))}) for r in (a, b)]
    model.apply(batch)
    outcome = store.apply(to_groups(batch), {0: 5, 1: 3})
    assert outcome.applied == 2
    assert not outcome.conflicts
    assert store.positions() == {0: 5, 1: 3}
    check(store, model, [a, b], ["n@1"])


def test_built_markers_are_per_project(store: OnlineStore) -> None:
    assert store.built("p1") == set()
    store.mark_built("p1", ["a@1", "b@2"])
    store.mark_built("p1", ["a@1"])
    store.mark_built("p2", ["c@1"])
    store.mark_built("p3", [])
    assert store.built("p1") == {"a@1", "b@2"}
    assert store.built("p2") == {"c@1"}
    assert store.built("p3") == set()


def test_unmarked_fields_are_no_longer_built_and_can_be_marked_again(store: OnlineStore) -> None:
    store.mark_built("p1", ["a@1", "b@2"])
    store.mark_built("p2", ["a@1"])
    store.unmark_built("p1", ["a@1", "never@1"])
    store.unmark_built("p1", [])
    assert store.built("p1") == {"b@2"}
    assert store.built("p2") == {"a@1"}  # another project's marker is untouched
    store.mark_built("p1", ["a@1"])
    assert store.built("p1") == {"a@1", "b@2"}


def test_projects_and_entity_keys_never_see_each_other(store: OnlineStore) -> None:
    c = Aggregation.COUNT
    refs = [
        EntityRef("shop-a", "user_id", "42"),
        EntityRef("shop-b", "user_id", "42"),
        EntityRef("shop-a", "cart_id", "42"),
        EntityRef("shop-a|user_id", "42", "x"),
        EntityRef("shop-a", "user_id|42", "x"),
        EntityRef("{a}", "b:c", "d|e}"),
        EntityRef("{a", "}b:c", "d|e"),
        EntityRef("shop-a", "user_id", "4%32"),
        EntityRef("shop-a", "user_id", "ü 42 \u2603"),
    ]
    put(store, [update(r, 0, 0, {"n@1": fu(c, {"4": {T0: i + 1}})}) for i, r in enumerate(refs)])
    got = store.read(refs, ["n@1"])
    assert [g["n@1"]["t"]["4"][T0] for g in got] == list(range(1, len(refs) + 1))
    assert store.delete_entities([refs[0]]) == 1
    assert store.read(refs[:2], ["n@1"])[0] == {}
    assert store.read(refs[1:2], ["n@1"])[0]["n@1"]["t"]["4"][T0] == 2


def test_delete_entities_forgets_state_and_positions(store: OnlineStore) -> None:
    c = Aggregation.COUNT
    a, b, never = entity(), entity(), entity()
    batch = [update(r, 0, 5, {"n@1": fu(c, {"4": {T0: 3}})}) for r in (a, b)]
    put(store, batch)
    assert store.delete_entities([a, never, b]) == 2
    assert store.read([a, b], ["n@1"]) == [{}, {}]
    assert store.delete_entities([a]) == 0
    assert store.delete_entities([]) == 0
    assert put(store, batch).applied == 2  # positions went with the entity
    assert store.read([a], ["n@1"])[0]["n@1"]["t"]["4"] == {T0: 3}


# --- TTL, durability, concurrency ---------------------------------------------------------


def test_idle_entities_expire_after_the_ttl(stores: Stores, store: OnlineStore) -> None:
    c = Aggregation.COUNT
    idle, busy, replaced = entity(), entity(), entity()
    put(store, [update(r, 0, 0, {"n@1": fu(c, {"4": {T0: 1}})}) for r in (idle, busy)])
    store.replace(
        {replaced: {"n@1": {"t": {"4": {T0: 1}}, "b": None, "e": None, "l": T0}}},
        [spec("n@1", c)],
    )
    if stores.kind == "redis":
        client = stores.redis()
        keys = [store.key(r) for r in (idle, busy, replaced)]  # type: ignore[attr-defined]
        for key in keys:
            assert 0 < client.pttl(key) <= TTL * 1000
        client.pexpire(keys[0], 1)
        client.pexpire(keys[2], 1)
        client.pexpire(keys[1], 5000)  # an update refreshes the TTL
        client.close()

        time.sleep(0.01)
        put(store, [update(busy, 1, 1, {"n@1": fu(c, {"4": {T0: 1}})})])
        client = stores.redis()
        assert client.pttl(keys[1]) > 5000
        client.close()
    else:
        stores.clock.now += TTL - 10
        put(store, [update(busy, 1, 1, {"n@1": fu(c, {"4": {T0: 1}})})])
        stores.clock.now += 11  # idle and replaced: TTL + 1 s without a write
    assert store.read([idle, busy, replaced], ["n@1"]) == [
        {},
        {"n@1": {"t": {"4": {T0: 2}}, "b": None, "e": None, "l": T0}},
        {},
    ]
    # an expired entity starts afresh: its old state and positions are gone
    assert put(store, [update(idle, 0, 0, {"m@1": fu(c, {"4": {T0: 7}})})]).applied == 1
    assert store.read([idle], ["n@1", "m@1"]) == [
        {"m@1": {"t": {"4": {T0: 7}}, "b": None, "e": None, "l": T0}}
    ]
    if stores.kind == "embedded":  # still so after a restart
        store = stores.reopen(store)
        assert store.read([idle, replaced], ["n@1", "m@1"]) == [
            {"m@1": {"t": {"4": {T0: 7}}, "b": None, "e": None, "l": T0}},
            {},
        ]


def test_embedded_purges_expired_entities(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SQLiteOnline(str(tmp_path / "o.db"), 100, clock=clock)
    c = Aggregation.COUNT
    old, new = entity(), entity()
    put(store, [update(old, 0, 0, {"n@1": fu(c, {"4": {T0: 1}})})])
    clock.now += 3600
    put(store, [update(new, 0, 0, {"n@1": fu(c, {"4": {T0: 1}})})])  # sweeps
    assert store.delete_entities([old]) == 0  # already purged
    assert store.delete_entities([new]) == 1
    store.close()


def test_state_survives_close_and_reopen(stores: Stores, store: OnlineStore) -> None:
    model, ref = Reference(), entity()
    agg = Aggregation.AVG
    run(
        store, model, [update(ref, 0, 9, {"a@1": fu(agg, partial(agg, events(10)), lifetime=True)})]
    )
    store.commit({0: 10, 3: 4})
    store.mark_built("p1", ["a@1"])
    store = stores.reopen(store)
    check(store, model, [ref], ["a@1"])
    assert store.positions() == {0: 10, 3: 4}
    assert store.built("p1") == {"a@1"}
    if isinstance(store, RedisOnline):
        assert put(store, [update(ref, 0, 9, {"a@1": fu(agg, {"4": {T0: [1.0, 1]}})})]).skipped
    store.ping()


def test_a_failing_update_leaves_no_half_applied_entity(stores: Stores, store: OnlineStore) -> None:
    model, a, b = Reference(), entity(), entity()
    s = Aggregation.SUM
    run(store, model, [update(r, 0, 0, {"s@1": fu(s, {"4": {T0: 1.5}})}) for r in (a, b)])
    bad = update(b, 1, 1, {"s@1": fu(s, {"4": {T0: 1.0}}), "t@1": fu(s, {"4": {T0: 3.0}}),
                           "u@1": fu(s, {"4": {T0: 2.0}})})  # fmt: skip
    good = update(a, 1, 1, {"s@1": fu(s, {"4": {T0: 1.0}})})
    if isinstance(store, RedisOnline):
        bad.features["s@1"].tiles["4"][T0] = "not a number"
        with pytest.raises(Exception):  # noqa: B017, PT011 (the engine's own error type)
            apply_each(store, [good, bad])
    else:  # a group whose table lacks a state column, after good ones
        groups = to_groups([good, bad])
        broken = groups[-1]
        groups[-1] = type(broken)(broken.project_id, broken.entity_key, broken.fields,
                                  broken.table.drop_columns(["a0"]), broken.now_us)  # fmt: skip
        with pytest.raises(KeyError):
            store.apply(groups, {0: 2})
        assert store.positions() == {}  # positions went with the state: not recorded
    got_b = store.read([b], ["s@1", "t@1", "u@1"])[0]
    assert got_b == model.read(b, ["s@1"])  # nothing of the failing update
    assert put(store, [update(b, 1, 1, {"s@1": fu(s, {"4": {T0: 1.0}})})]).applied == 1
    if stores.kind == "embedded":  # one transaction for the whole batch
        assert store.read([a], ["s@1"]) == [model.read(a, ["s@1"])]


def test_readers_never_see_a_half_applied_update(store: OnlineStore) -> None:
    """Concurrent reads during applies see, per entity, the state after some whole update."""
    ref = entity()
    c = Aggregation.COUNT
    names = [f"f{i}@1" for i in range(10)]
    rounds = 60
    stop = threading.Event()
    seen: list[set[int]] = []

    def reader() -> None:
        while not stop.is_set():
            got = store.read([ref], names)[0]
            seen.append({got[n]["t"]["4"][T0] for n in names} if got else {0})

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(rounds):
            put(store, [update(ref, i, i, {n: fu(c, {"4": {T0: 1}}) for n in names})])
    finally:
        stop.set()
        thread.join()
    assert seen
    assert all(len(values) == 1 for values in seen)  # every field from the same update
    assert store.read([ref], names[:1])[0][names[0]]["t"]["4"][T0] == rounds


# --- registry -----------------------------------------------------------------------------


def test_registry_opens_each_adapter_by_url(tmp_path: Path) -> None:
    embedded = open_online(f"sqlite:///{tmp_path}/sub/online.db", 60)
    assert embedded.kind == "embedded"
    embedded.ping()
    embedded.close()
    assert (tmp_path / "sub" / "online.db").exists()
    memory = open_online("sqlite://:memory:", 60)
    memory.commit({0: 1})
    assert memory.positions() == {0: 1}
    memory.close()
    redis = open_online("redis://127.0.0.1:1/3?prefix=x&socket_timeout=0.5&decode_cache_mb=0", 60)
    assert redis.kind == "redis"
    assert redis.key(EntityRef("p", "k", "i")).startswith("x:e:{")  # type: ignore[attr-defined]
    redis.close()
    with pytest.raises(ValueError, match="unsupported"):
        open_online("memcached://x", 60)
    with pytest.raises(ValueError, match="sqlite"):
        open_online("sqlite://", 60)


def test_the_decode_cache_is_bounded_and_keyed_by_exact_bytes() -> None:
    cache = DecodeCache(max_bytes=3000)
    blobs = [{"t": {"4": {T0 + i: float(i)}}, "b": None, "e": None, "l": T0 + i} for i in range(20)]
    data = [pack(b) for b in blobs]
    first = cache.decode(data[0])
    assert [cache.decode(d) for d in data] == blobs
    assert cache.decode(data[0]) is not first  # evicted since: decoded again
    last = cache.decode(data[-1])
    assert cache.decode(bytes(data[-1])) is last  # equal bytes: a hit
    assert DecodeCache(0).decode(data[1]) == blobs[1]


# --- property: redis == embedded == Python ------------------------------------------------


@pytest.mark.redis
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=streams())
def test_property_redis_equals_embedded_equals_python(
    both: tuple[OnlineStore, OnlineStore], stream: tuple[Aggregation, list[list[EntityUpdate]]]
) -> None:
    _, batches = stream
    model = Reference()
    embedded, redis = both
    assert isinstance(redis, RedisOnline)
    for batch in batches:
        want = model.apply(batch)
        assert summary(apply_each(redis, batch)) == want
        embedded.apply(to_groups(model.applied), {})  # its caller drops what was applied
    ref = batches[0][0].ref
    check(embedded, model, [ref], ["f@1"])
    check(redis, model, [ref], ["f@1"])
    assert redis.read([ref], ["f@1"]) == [model.read(ref, ["f@1"])]


# --- embedded only: several stores (processes) on one file, cache bounds, no blocking -------


def test_embedded_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    """An API process and a ``dataintel worker`` share the file: caches stay coherent."""
    path = str(tmp_path / "shared.db")
    worker, api = SQLiteOnline(path, TTL), SQLiteOnline(path, TTL)
    model, ref, other = Reference(), entity(), entity()
    c = Aggregation.COUNT
    run(worker, model, [update(r, 0, 0, {"n@1": fu(c, {"4": {T0: 1}})}) for r in (ref, other)])
    check(api, model, [ref, other], ["n@1"])  # now cached in the API process
    run(worker, model, [update(ref, 1, 1, {"n@1": fu(c, {"4": {T0: 1}})})])
    check(api, model, [ref, other], ["n@1"])
    # a recompute written by the API, then an apply by the worker: no lost update
    blob = {"t": {"4": {T0: 40}}, "b": None, "e": None, "l": T0}
    api.replace({ref: {"n@1": blob}}, [spec("n@1", c)])
    model.blobs[ref]["n@1"] = blob
    run(worker, model, [update(ref, 2, 2, {"n@1": fu(c, {"4": {T0: 1}})})])
    check(api, model, [ref], ["n@1"])
    assert worker.read([ref], ["n@1"])[0]["n@1"]["t"]["4"][T0] == 41
    assert api.delete_entities([other]) == 1
    assert worker.read([other], ["n@1"]) == [{}]
    worker.close()
    api.close()


def test_embedded_store_behind_the_change_log_clears_its_cache(tmp_path: Path) -> None:
    path, clock = str(tmp_path / "shared.db"), FakeClock()
    worker, api = SQLiteOnline(path, 10**6, clock=clock), SQLiteOnline(path, 10**6, clock=clock)
    ref, c = entity(), Aggregation.COUNT
    put(worker, [update(ref, 0, 0, {"n@1": fu(c, {"4": {T0: 1}})})])
    assert api.read([ref], ["n@1"])[0]["n@1"]["t"]["4"][T0] == 1
    put(worker, [update(ref, 1, 1, {"n@1": fu(c, {"4": {T0: 1}})})])
    clock.now += 3600  # the worker prunes the change log before the API looks again
    put(worker, [update(entity(), 0, 0, {"n@1": fu(c, {"4": {T0: 1}})})])
    assert api.read([ref], ["n@1"])[0]["n@1"]["t"]["4"][T0] == 2
    worker.close()
    api.close()


def test_embedded_cache_is_bounded_and_misses_read_sqlite(tmp_path: Path) -> None:
    store = open_online(f"sqlite:///{tmp_path}/small.db?cache_mb=0.003", TTL)  # ~3 KB
    assert isinstance(store, SQLiteOnline)
    model, c = Reference(), Aggregation.COUNT
    refs = [entity() for _ in range(20)]
    run(store, model, [update(r, 0, 0, {"n@1": fu(c, partial(c, events(3)))}) for r in refs])
    for _ in range(2):
        check(store, model, refs, ["n@1"])
    assert len(store._cache._entries) < 3  # white box: the bound holds
    store.close()


def test_embedded_reads_do_not_wait_for_a_write_transaction(tmp_path: Path) -> None:
    path = str(tmp_path / "o.db")
    store = SQLiteOnline(path, TTL)
    cached, cold, c = entity(), entity(), Aggregation.COUNT
    put(store, [update(r, 0, 0, {"n@1": fu(c, {"4": {T0: 1}})}) for r in (cached, cold)])
    store.close()
    store = SQLiteOnline(path, TTL)
    store.read([cached], ["n@1"])
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock (a slow fsync)
    writing = threading.Thread(
        target=put, args=(store, [update(cached, 1, 1, {"n@1": fu(c, {"4": {T0: 1}})})])
    )
    writing.start()
    try:
        time.sleep(0.05)
        assert writing.is_alive()  # the apply is stuck in BEGIN IMMEDIATE
        started = time.perf_counter()
        got = store.read([cached, cold], ["n@1"])
        assert time.perf_counter() - started < 0.5
        assert [g["n@1"]["t"]["4"][T0] for g in got] == [1, 1]
    finally:
        blocker.execute("ROLLBACK")
        writing.join()
    assert store.read([cached], ["n@1"])[0]["n@1"]["t"]["4"][T0] == 2
    store.close()
