"""AnalyticsStore.sql_batches, on every engine: a query streamed in bounded batches that may
also read Arrow tables lent by the caller (joined with the events, compared as UTC times),
visible to that query only; the lent tables are gone afterwards and their names checked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.errors import InvalidQuery
from tests.storage.contract.test_analytics import ENGINES, T0, micros, run, url


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnalyticsStore]:
    opened = open_analytics(url(request.param, tmp_path))
    yield opened
    opened.close()


TS = pa.timestamp("us", tz="UTC")


def labels(n: int, naive: bool = False) -> pa.Table:
    times = [micros(T0 + timedelta(seconds=10 * i)) for i in range(n)]
    kind = pa.timestamp("us") if naive else TS
    return pa.table(
        {
            "row_id": pa.array(range(n), pa.int64()),
            "who": pa.array(["u1" if i % 2 else "nobody" for i in range(n)], pa.string()),
            "at": pa.array(times, pa.int64()).cast(kind),
            "w": pa.array([0.5 * i for i in range(n)], pa.float64()),
        }
    )


JOIN = """
SELECT l.row_id, l.at, l.w, count(e.event_id) AS n
FROM lab l LEFT JOIN events e ON e.user_id = l.who AND e.project_id = ?
  AND e.ts <= l.at
GROUP BY l.row_id, l.at, l.w ORDER BY l.row_id
"""


@pytest.mark.parametrize("naive", [False, True])
def test_a_lent_table_joins_the_events(store: AnalyticsStore, naive: bool) -> None:
    store.apply(run(100))  # u1, one event per second from T0
    batches = list(store.sql_batches(JOIN, ["p1"], {"lab": labels(25, naive)}, batch_rows=4))
    assert batches
    assert all(0 < b.num_rows <= 4 for b in batches)
    table = pa.Table.from_batches(batches)
    assert table.column("row_id").to_pylist() == list(range(25))
    # row i (odd: u1) at T0 + 10 i s sees the events at T0 + 0..10 i s
    want = [min(10 * i + 1, 100) if i % 2 else 0 for i in range(25)]
    assert table.column("n").to_pylist() == want
    assert table.schema.field("at").type == TS
    assert table.column("at").to_pylist()[3] == T0 + timedelta(seconds=30)
    assert table.column("w").to_pylist()[3] == 1.5


def test_without_tables_and_with_an_empty_one(store: AnalyticsStore) -> None:
    store.apply(run(30))
    got = list(store.sql_batches("SELECT event_id FROM events ORDER BY event_id", [], None, 7))
    assert all(0 < b.num_rows <= 7 for b in got)
    assert sum(b.num_rows for b in got) == 30
    rows = list(store.sql_batches(JOIN, ["p1"], {"lab": labels(0)}))
    assert sum(b.num_rows for b in rows) == 0


def test_lent_tables_are_private_to_the_query(store: AnalyticsStore) -> None:
    store.apply(run(3))
    assert list(store.sql_batches("SELECT count(*) AS n FROM lab", [], {"lab": labels(5)}))
    with pytest.raises(InvalidQuery):  # gone, and never readable without lending it
        list(store.sql_batches("SELECT count(*) AS n FROM lab"))
    with pytest.raises(InvalidQuery):
        store.sql("SELECT count(*) AS n FROM lab")


@pytest.mark.parametrize("name", ["events", "log_positions", "a b", "x;drop"])
def test_lent_table_names_are_checked(store: AnalyticsStore, name: str) -> None:
    with pytest.raises(InvalidQuery):
        list(store.sql_batches("SELECT 1 AS one", [], {name: labels(1)}))


def test_a_failing_query_is_a_bad_request_and_cleans_up(store: AnalyticsStore) -> None:
    with pytest.raises(InvalidQuery):
        list(store.sql_batches("SELECT no_such_column FROM lab", [], {"lab": labels(2)}))
    with pytest.raises(InvalidQuery):
        list(store.sql_batches("DELETE FROM events", [], {"lab": labels(2)}))
    assert list(store.sql_batches("SELECT count(*) AS n FROM lab", [], {"lab": labels(2)}))
