"""The AnalyticsStore contract for batch feature runs (``write_batch_values``), on DuckDB
and chDB: a run's rows (and its marker row) are readable by ``sql``; writing a run again is
idempotent; a re-write with other values replaces them, and an entity it lacks reads as the
run's empty value; runs, features, versions and projects never mix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from dataintel.model.subject import Subject
from dataintel.storage.analytics.port import RUN_MARKER, AnalyticsStore, BatchRun
from dataintel.storage.analytics.registry import open_analytics
from tests.storage.contract.test_analytics import ENGINES, url

READ = (
    "SELECT computed_at, entity, value FROM batch_feature_values WHERE project_id = ? "
    "AND feature = ? AND version = ? ORDER BY computed_at, entity"
)


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnalyticsStore]:
    opened = open_analytics(url(request.param, tmp_path))
    yield opened
    opened.close()


def rows(
    store: AnalyticsStore, feature: str = "f", version: int = 1, project: str = "p"
) -> list[Any]:
    table = store.sql(READ, [project, feature, version])
    return [
        (int(r["computed_at"].timestamp() * 1_000_000), r["entity"], orjson.loads(r["value"]))
        for r in table.to_pylist()
    ]


def test_runs_are_kept_with_their_marker(store: AnalyticsStore) -> None:
    store.write_batch_values(BatchRun("p", "f", 1, 1_000_000, {"a": 1.5, "b": None}, 0))
    store.write_batch_values(BatchRun("p", "f", 1, 2_000_000, {}, 0))
    assert rows(store) == [
        (1_000_000, RUN_MARKER, 0),
        (1_000_000, "a", 1.5),
        (1_000_000, "b", None),
        (2_000_000, RUN_MARKER, 0),  # a run that found nobody is still a run
    ]


def test_writing_a_run_again_is_idempotent_and_replaces(store: AnalyticsStore) -> None:
    first = BatchRun("p", "f", 1, 1_000_000, {"a": 1, "b": 2}, 0)
    store.write_batch_values(first)
    store.write_batch_values(first)
    assert rows(store) == [(1_000_000, RUN_MARKER, 0), (1_000_000, "a", 1), (1_000_000, "b", 2)]
    store.write_batch_values(BatchRun("p", "f", 1, 1_000_000, {"a": 5}, 0))
    found = {e: v for _, e, v in rows(store)}
    assert found["a"] == 5
    assert found.get("b", 0) == 0  # absent or the empty value: both read as 0


def test_features_versions_and_projects_never_mix(store: AnalyticsStore) -> None:
    store.write_batch_values(BatchRun("p", "f", 1, 1_000_000, {"a": 1}))
    store.write_batch_values(BatchRun("p", "f", 2, 1_000_000, {"a": 2}))
    store.write_batch_values(BatchRun("p", "g", 1, 1_000_000, {"a": 3}))
    store.write_batch_values(BatchRun("q", "f", 1, 1_000_000, {"a": 4}))
    assert [v for _, e, v in rows(store) if e == "a"] == [1]
    assert [v for _, e, v in rows(store, version=2) if e == "a"] == [2]
    assert [v for _, e, v in rows(store, feature="g") if e == "a"] == [3]
    assert [v for _, e, v in rows(store, project="q") if e == "a"] == [4]


def test_erasure_removes_the_subjects_batch_values(store: AnalyticsStore) -> None:
    store.write_batch_values(BatchRun("p", "f", 1, 1_000_000, {"u1": 1, "u2": 2}, 0, "user_id"))
    store.write_batch_values(BatchRun("p", "c", 1, 1_000_000, {"c1": 1, "c2": 2}, 0, "cart_id"))
    store.write_batch_values(BatchRun("p", "s", 1, 1_000_000, {"u1": 7}, 0, "store_id"))
    store.write_batch_values(BatchRun("q", "f", 1, 1_000_000, {"u1": 9}, 0, "user_id"))
    store.erase(Subject("p", "u1", frozenset({"c1"})))
    assert [e for _, e, _ in rows(store)] == [RUN_MARKER, "u2"]
    assert [e for _, e, _ in rows(store, feature="c")] == [RUN_MARKER, "c2"]
    assert [e for _, e, _ in rows(store, feature="s")] == [RUN_MARKER, "u1"]  # not a user id
    assert [e for _, e, _ in rows(store, project="q")] == [RUN_MARKER, "u1"]
