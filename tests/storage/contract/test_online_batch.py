"""The OnlineStore contract for batch feature values, on the embedded store and on Redis:
a run replaces its field's values as a whole (an entity it did not find reads as the run's
empty value), an older run never overwrites a newer one, re-writing a run is idempotent,
projects / entity keys / fields never mix, deletion forgets an entity's values, and the
values survive a reopen."""

from __future__ import annotations

import asyncio

from dataintel.storage.online.port import BatchValue, BatchValues, EntityRef, OnlineStore
from tests.storage.contract.online_fixtures import (  # noqa: F401 (fixtures)
    Stores,
    store_fixture,
    stores_fixture,
)

F = "store_conversion_rate@1"


def run(
    at: int,
    values: dict[str, object],
    empty: object = None,
    project: str = "p",
    key: str = "store_id",
    field: str = F,
) -> BatchValues:
    return BatchValues(project, key, field, at, empty, values)


def ref(entity: str, project: str = "p", key: str = "store_id") -> EntityRef:
    return EntityRef(project, key, entity)


def test_a_run_is_read_back_with_its_time(store: OnlineStore) -> None:
    assert store.read_batch([ref("s1")], [F]) == [{}]  # never computed: absent
    assert store.write_batch(run(100, {"s1": 0.25, "s2": 3, "s3": "text", "s4": None}, empty=0))
    got = store.read_batch([ref("s1"), ref("s2"), ref("s3"), ref("s4"), ref("s9")], [F, "other@1"])
    assert got == [
        {F: BatchValue(0.25, 100)},
        {F: BatchValue(3, 100)},
        {F: BatchValue("text", 100)},
        {F: BatchValue(None, 100)},
        {F: BatchValue(0, 100)},  # not found by the run: its empty value
    ]
    assert asyncio.run(store.aread_batch([ref("s1")], [F])) == [{F: BatchValue(0.25, 100)}]


def test_a_run_replaces_the_previous_one_whole(store: OnlineStore) -> None:
    store.write_batch(run(100, {"s1": 1, "s2": 2}))
    assert store.write_batch(run(200, {"s2": 20}))
    got = store.read_batch([ref("s1"), ref("s2")], [F])
    assert got == [{F: BatchValue(None, 200)}, {F: BatchValue(20, 200)}]
    assert store.write_batch(run(300, {}, empty=0))
    assert store.read_batch([ref("s2")], [F]) == [{F: BatchValue(0, 300)}]


def test_an_older_run_never_overwrites_a_newer_one(store: OnlineStore) -> None:
    store.write_batch(run(200, {"s1": 2}))
    assert not store.write_batch(run(100, {"s1": 1}))
    assert store.write_batch(run(200, {"s1": 2}))  # the same run again: idempotent
    assert store.read_batch([ref("s1")], [F]) == [{F: BatchValue(2, 200)}]


def test_projects_entity_keys_and_fields_never_mix(store: OnlineStore) -> None:
    store.write_batch(run(100, {"x": 1}))
    store.write_batch(run(100, {"x": 2}, project="q"))
    store.write_batch(run(100, {"x": 3}, key="category", field="popularity@1"))
    got = store.read_batch([ref("x"), ref("x", "q"), ref("x", key="category")], [F, "popularity@1"])
    assert got == [
        {F: BatchValue(1, 100)},
        {F: BatchValue(2, 100)},
        {"popularity@1": BatchValue(3, 100)},
    ]


def test_delete_entities_forgets_their_values(store: OnlineStore) -> None:
    store.write_batch(run(100, {"s1": 1, "s2": 2}, empty=0))
    store.write_batch(run(100, {"s1": 5}, project="q"))
    store.delete_entities([ref("s1")])
    assert store.read_batch([ref("s1"), ref("s2"), ref("s1", "q")], [F]) == [
        {F: BatchValue(0, 100)},
        {F: BatchValue(2, 100)},
        {F: BatchValue(5, 100)},
    ]


def test_values_survive_a_reopen(stores: Stores, store: OnlineStore) -> None:
    store.write_batch(run(100, {f"s{i}": i for i in range(25_000)}))
    again = stores.reopen(store)
    assert again.read_batch([ref("s24999")], [F]) == [{F: BatchValue(24999, 100)}]
