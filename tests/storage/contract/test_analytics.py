"""The AnalyticsStore contract: one suite, run on DuckDB and on ClickHouse (chDB).

Whatever the engine: ``apply`` writes every event exactly once (positions, per-event dedup),
positions survive a reopen, projects stay apart, scans filter, page by keyset and stream in
bounded batches, and a query written once in DuckDB SQL returns the same table on both.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from dataintel.storage.analytics.decode import EVENT_SCHEMA, CorruptEntry, decode_entries
from dataintel.storage.analytics.port import AnalyticsStore, EventQuery
from dataintel.storage.analytics.registry import clickhouse_client_args, open_analytics
from dataintel.storage.errors import InvalidQuery
from dataintel.storage.eventlog.port import LogEntry
from dataintel.storage.records import StoredEvent, encode

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
ENGINES = ["duckdb", "chdb"]


def micros(when: datetime) -> int:
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def entry(partition: int, offset: int, event_id: str, **fields: Any) -> LogEntry:
    when = fields.pop("when", T0 + timedelta(seconds=offset))
    event: StoredEvent = {
        "project_id": "p1",
        "pipeline_id": "web",
        "pipeline_version": 1,
        "event_id": event_id,
        "event": "view",
        "ts": micros(when),
        "received_at": micros(fields.pop("received", when + timedelta(milliseconds=5))),
        "user_id": "u1",
        "cart_id": None,
        "session_id": None,
        "properties": {"n": offset},
    }
    event.update(fields)  # type: ignore[typeddict-item]
    return LogEntry(partition, offset, encode(event))


def run(n: int, partition: int = 0, start: int = 0, **fields: Any) -> list[LogEntry]:
    return [entry(partition, o, f"e{partition}-{o:06d}", **fields) for o in range(start, n)]


def url(engine: str, where: Path) -> str:
    return f"duckdb:///{where}/analytics.duckdb" if engine == "duckdb" else f"chdb:///{where}/ch"


@pytest.fixture(params=ENGINES)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Opens the engine's store on one data path; every store opened is closed after."""
    opened: list[AnalyticsStore] = []

    def open_store() -> AnalyticsStore:
        store = open_analytics(url(request.param, tmp_path))
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Callable[[], AnalyticsStore]) -> AnalyticsStore:
    return opener()


def ids(store: AnalyticsStore, query: EventQuery) -> list[str]:
    return [i for b in store.scan_events(query) for i in b.column("event_id").to_pylist()]


def total(store: AnalyticsStore, project: str = "p1") -> int:
    table = store.sql("SELECT count(*) AS n FROM events WHERE project_id = ?", [project])
    return int(table.column("n")[0].as_py())


def test_apply_is_exactly_once(store: AnalyticsStore) -> None:
    batch = run(60) + run(40, partition=3)
    first = store.apply(batch)
    assert (first.inserted, first.skipped, first.positions) == (100, 0, {0: 60, 3: 40})
    again = store.apply(batch)
    assert (again.inserted, again.skipped, again.positions) == (0, 100, {0: 60, 3: 40})
    assert store.apply([]).inserted == 0
    assert store.positions() == {0: 60, 3: 40}
    assert total(store) == 100


def test_apply_hands_back_the_batch_it_decoded(store: AnalyticsStore) -> None:
    """Later sinks of the same micro-batch (the feature engine) reuse it: decoded once."""
    batch = run(5) + run(3, partition=2)
    result = store.apply(batch)
    assert result.batch is not None
    assert result.batch.equals(decode_entries(batch))
    again = store.apply(batch)  # a replay is decoded too: the feature sink filters it
    assert again.batch is not None
    assert again.batch.equals(decode_entries(batch))


def test_positions_survive_reopen(opener: Callable[[], AnalyticsStore]) -> None:
    store = opener()
    store.apply(run(20) + run(5, partition=1))
    store.close()
    reopened = opener()
    assert reopened.positions() == {0: 20, 1: 5}
    assert reopened.apply(run(25)).inserted == 5  # offsets 20..24 only
    assert reopened.positions() == {0: 25, 1: 5}
    assert total(reopened) == 30


def test_entries_below_the_position_are_skipped(store: AnalyticsStore) -> None:
    store.apply(run(10))
    # Offsets 5..9 are below the position: skipped even though their event ids are new.
    replay = [entry(0, o, f"other-{o}") for o in range(5, 15)]
    result = store.apply(replay)
    assert (result.inserted, result.skipped, result.positions) == (5, 5, {0: 15})
    assert "other-5" not in ids(store, EventQuery("p1"))
    assert "other-10" in ids(store, EventQuery("p1"))


def test_one_event_id_at_two_offsets_is_stored_once(store: AnalyticsStore) -> None:
    batch = [entry(0, 0, "dup", event="first"), entry(0, 1, "dup", event="second")]
    assert store.apply(batch).inserted == 1
    assert store.apply([entry(0, 2, "dup", event="third"), entry(1, 0, "dup")]).inserted == 0
    rows = [r for b in store.scan_events(EventQuery("p1")) for r in b.to_pylist()]
    assert [(r["event_id"], r["event"], r["log_offset"]) for r in rows] == [("dup", "first", 0)]
    assert store.positions() == {0: 3, 1: 1}


def test_projects_are_separate(store: AnalyticsStore) -> None:
    store.apply([entry(0, 0, "same", project_id="A"), entry(0, 1, "same", project_id="B")])
    store.apply([entry(0, 2, "only-b", project_id="B")])
    scan_a = [r for b in store.scan_events(EventQuery("A")) for r in b.to_pylist()]
    assert [(r["project_id"], r["event_id"]) for r in scan_a] == [("A", "same")]
    assert ids(store, EventQuery("B")) == ["same", "only-b"]
    assert (total(store, "A"), total(store, "B")) == (1, 2)
    assert store.count_events("nobody") == []


def test_scan_filters(store: AnalyticsStore) -> None:
    names = ["view", "cart", "purchase"]
    store.apply(
        [
            entry(
                0,
                o,
                f"e{o:02d}",
                event=names[o % 3],
                user_id=f"u{o % 2}",
                pipeline_id="web" if o < 10 else "app",
                when=T0 + timedelta(minutes=o),
            )
            for o in range(20)
        ]
    )
    window = EventQuery("p1", start=T0 + timedelta(minutes=5), end=T0 + timedelta(minutes=8))
    assert ids(store, window) == ["e05", "e06", "e07"]  # start inclusive, end exclusive
    offset_tz = T0.astimezone(datetime.now().astimezone().tzinfo)
    assert ids(store, EventQuery("p1", end=offset_tz + timedelta(minutes=1))) == ["e00"]
    assert ids(store, EventQuery("p1", events=["cart", "purchase"]))[:4] == [
        "e01",
        "e02",
        "e04",
        "e05",
    ]
    assert ids(store, EventQuery("p1", user_id="u1"))[:3] == ["e01", "e03", "e05"]
    assert len(ids(store, EventQuery("p1", pipeline_id="app"))) == 10
    both = EventQuery("p1", events=["cart"], user_id="u0", pipeline_id="app")
    assert ids(store, both) == ["e10", "e16"]
    assert ids(store, EventQuery("p1", user_id="nobody")) == []


def test_keyset_cursor_resumes_exactly_after_the_last_row(
    store: AnalyticsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten events share each timestamp: the cursor must break ties on event_id. DuckDB scans
    # in keyset pages: pages of 9 rows cut through the ties.
    from dataintel.storage.analytics import duckdb as duckdb_store

    monkeypatch.setattr(duckdb_store, "SCAN_PAGE_ROWS", 9)
    store.apply(
        [entry(0, o, f"k{o:03d}", when=T0 + timedelta(seconds=o // 10)) for o in range(100)]
    )
    everything = ids(store, EventQuery("p1", batch_rows=7))
    assert everything == sorted(everything, key=lambda i: (int(i[1:]) // 10, i))
    assert len(everything) == 100
    seen: list[str] = []
    after = None
    while True:
        page = next(store.scan_events(EventQuery("p1", after=after, batch_rows=13)), None)
        if page is None:
            break
        last = page.slice(page.num_rows - 1).to_pylist()[0]
        seen += page.column("event_id").to_pylist()
        after = (micros(last["ts"]), last["event_id"])
    assert seen == everything


def test_scan_streams_bounded_batches(store: AnalyticsStore) -> None:
    for start in range(0, 50_000, 10_000):
        store.apply(run(start + 10_000, start=start))
    sizes = []
    for batch in store.scan_events(EventQuery("p1", batch_rows=1_000)):
        assert batch.schema == EVENT_SCHEMA
        sizes.append(batch.num_rows)
    assert sizes == [1_000] * 50


def test_count_events_per_hour(store: AnalyticsStore) -> None:
    hour = T0.replace(minute=0)
    arrivals = [(0, "view"), (10, "view"), (59, "cart"), (60, "view"), (125, "view")]
    store.apply(
        [
            entry(0, o, f"c{o}", event=name, received=hour + timedelta(minutes=m))
            for o, (m, name) in enumerate(arrivals)
        ]
    )
    counts = [(c.event, c.hour, c.count) for c in store.count_events("p1")]
    assert counts == [
        ("cart", hour, 1),
        ("view", hour, 2),
        ("view", hour + timedelta(hours=1), 1),
        ("view", hour + timedelta(hours=2), 1),
    ]
    later = store.count_events("p1", since=hour + timedelta(minutes=30))
    assert [(c.event, c.count) for c in later] == [("cart", 1), ("view", 1), ("view", 1)]


def test_unicode_and_nested_properties_round_trip(store: AnalyticsStore) -> None:
    tricky = "Zoë's \"café\" \\ 東京 🛒\t\n'; DROP TABLE events; --"
    props = {"items": [{"sku": "ß-1", "qty": 2, "price": 9.99}], "meta": {"k": [None, True]}}
    store.apply([entry(0, 0, tricky, user_id=tricky, properties=props, cart_id="c-✓")])
    rows = store.scan_events(EventQuery("p1", user_id=tricky, events=[tricky, "view"]))
    row = next(rows).to_pylist()[0]
    assert (row["event_id"], row["user_id"], row["cart_id"]) == (tricky, tricky, "c-✓")
    assert orjson.loads(row["properties"]) == props
    assert row["ts"] == T0
    assert row["session_id"] is None
    found = store.sql("SELECT event_id FROM events WHERE user_id = $1 AND event_id = $1", [tricky])
    assert found.column("event_id").to_pylist() == [tricky]


def test_concurrent_applies_and_scans(store: AnalyticsStore) -> None:
    def work(partition: int) -> None:
        for start in range(0, 400, 100):
            store.apply(run(start + 100, partition=partition, start=start))
            list(store.scan_events(EventQuery("p1", batch_rows=50)))

    with ThreadPoolExecutor(4) as pool:
        for done in [pool.submit(work, p) for p in range(4)]:
            done.result()  # re-raises a worker's error
    assert total(store) == 1_600
    assert store.positions() == dict.fromkeys(range(4), 400)


def test_sql_is_read_only(store: AnalyticsStore) -> None:
    store.apply(run(3))
    for query in [
        "DELETE FROM events",
        "SELECT 1; SELECT 2",
        "SELECT * FROM log_positions",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM main.events",
        "SELECT * FROM events WHERE",
    ]:
        with pytest.raises(InvalidQuery):
            store.sql(query)
    with pytest.raises(InvalidQuery, match="2 parameters, 1 given"):
        store.sql("SELECT * FROM events WHERE user_id = ? AND event = ?", ["u1"])
    assert total(store) == 3


def test_question_mark_parameters_bind_in_text_order(store: AnalyticsStore) -> None:
    store.apply([entry(0, 0, "a", user_id="u1", event="view", pipeline_id="web")])
    text = "SELECT count(*) AS n FROM events WHERE project_id = ? AND pipeline_id = ? AND event = ?"
    assert store.sql(text, ["p1", "web", "view"]).to_pylist() == [{"n": 1}]
    picked = store.sql("SELECT ? AS a, ? AS b FROM events WHERE event_id = ?", ["x", "y", "a"])
    assert picked.to_pylist() == [{"a": "x", "b": "y"}]


def test_chdb_replay_after_a_crash_between_rows_and_positions(tmp_path: Path) -> None:
    from dataintel.storage.analytics.clickhouse import ClickHouseAnalytics

    store = open_analytics(url("chdb", tmp_path))
    try:
        assert isinstance(store, ClickHouseAnalytics)
        batch = run(10)
        # Step 4 of apply done, then the crash: rows stored, positions not.
        store._engine.insert("events", decode_entries(batch), None)
        assert store.positions() == {}
        result = store.apply(batch)
        assert (result.inserted, result.positions) == (0, {0: 10})
        assert total(store) == 10
    finally:
        store.close()


QUERIES: list[tuple[str, list[object]]] = [
    (
        "SELECT event, count(*) AS n, count(DISTINCT user_id) AS users FROM events "
        "WHERE project_id = ? GROUP BY event ORDER BY event",
        ["p1"],
    ),
    (
        "SELECT user_id, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS n FROM events "
        "WHERE project_id = ? AND user_id IS NOT NULL GROUP BY user_id ORDER BY user_id",
        ["p1"],
    ),
    (
        "SELECT date_trunc('hour', ts) AS hour, count(*) AS n FROM events WHERE event = ? "
        "AND ts >= ? GROUP BY ALL ORDER BY hour",
        ["cart", T0 + timedelta(hours=1)],
    ),
    (
        "SELECT json_extract_string(properties, '$.brand') AS brand, "
        "sum(CAST(json_extract(properties, '$.price') AS DOUBLE)) AS revenue, "
        "sum(pipeline_version) AS versions FROM events WHERE list_contains(?, event) "
        "GROUP BY brand ORDER BY brand",
        [["purchase", "cart"]],
    ),
    (
        "WITH per_user AS (SELECT user_id, count(*) AS n FROM events GROUP BY user_id) "
        "SELECT n, count(*) AS users FROM per_user GROUP BY n ORDER BY n",
        [],
    ),
]


def test_sql_returns_the_same_table_on_both_engines(tmp_path: Path) -> None:
    brands = ["acme", "zoë", "東京"]
    batch = [
        entry(
            o % 2,
            o,
            f"q{o:04d}",
            event=["view", "cart", "purchase"][o % 3],
            user_id=f"u{o % 7}" if o % 11 else None,
            pipeline_version=1 + o % 2,
            when=T0 + timedelta(minutes=7 * o),
            properties={"brand": brands[o % 3], "price": (o % 5) * 2.5},
        )
        for o in range(300)
    ]
    tables: dict[str, list[pa.Table]] = {}
    for engine in ENGINES:
        store = open_analytics(url(engine, tmp_path))
        try:
            store.apply(batch)
            tables[engine] = [store.sql(text, params) for text, params in QUERIES]
        finally:
            store.close()
    for (text, _), duck, click in zip(QUERIES, tables["duckdb"], tables["chdb"], strict=True):
        assert duck.num_rows > 0, text
        assert duck.equals(click), (text, duck, click)


def test_decode_rejects_entries_that_are_not_events() -> None:
    table = decode_entries(run(3))
    assert table.schema == EVENT_SCHEMA
    assert table.num_rows == 3
    loose = orjson.loads(encode(orjson.loads(run(1)[0].value)))
    del loose["cart_id"]  # optional fields may be absent
    assert decode_entries([LogEntry(0, 0, orjson.dumps(loose))]).num_rows == 1
    with pytest.raises(CorruptEntry, match="partition 0 offset 7"):
        decode_entries([*run(2), LogEntry(0, 7, b"not json")])
    del loose["event_id"]
    with pytest.raises(CorruptEntry):
        decode_entries([LogEntry(0, 0, orjson.dumps(loose))])


def test_registry_urls() -> None:
    with pytest.raises(ValueError, match="unsupported analytics_url scheme"):
        open_analytics("sqlite:///x.db")
    assert clickhouse_client_args("clickhouse://bob:p%40ss@ch.example:9000/shop") == {
        "host": "ch.example",
        "port": 9000,
        "username": "bob",
        "password": "p@ss",
        "database": "shop",
        "secure": False,
    }
    args = clickhouse_client_args("clickhouse://ch.example/db?secure=true")
    assert (args["port"], args["secure"], args["username"]) == (8443, True, "default")
    from clickhouse_connect.driver.exceptions import OperationalError

    with pytest.raises(OperationalError):  # no server here: construction reaches for it
        open_analytics("clickhouse://127.0.0.1:9/db")


@pytest.mark.parametrize(
    ("scheme", "modules", "package"),
    [
        ("chdb:///tmp/x", ["chdb", "chdb.session"], "chdb"),
        ("clickhouse://h/db", ["clickhouse_connect"], "clickhouse-connect"),
    ],
)
def test_a_missing_driver_names_its_package(
    monkeypatch: pytest.MonkeyPatch, scheme: str, modules: list[str], package: str
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(RuntimeError, match=f"pip install '{package}'"):
        open_analytics(scheme)


def test_duckdb_memory_limit_from_the_url(tmp_path: Path) -> None:
    store = open_analytics(f"duckdb:///{tmp_path}/a.duckdb?memory_limit=300MB")
    try:
        setting = store.sql("SELECT current_setting('memory_limit') AS m").to_pylist()
        assert setting == [{"m": "286.1 MiB"}]
    finally:
        store.close()
    with pytest.raises(ValueError, match="memory_limit"):
        open_analytics(f"duckdb:///{tmp_path}/b.duckdb?memory_limit=lots")
