"""The offline path (SQL in the analytics store) against the brute-force reference, on
hand-made edge cases, on both engines (DuckDB and ClickHouse through chDB).

Events go through ``AnalyticsStore.apply`` as log entries, so the real table layout is read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.features.reference import entity_of, reference_values
from tests.features.streams import stored
from tests.storage.contract.test_analytics import ENGINES, url

from dataintel.features.offline.compute import (
    compute_offline,
    compute_offline_with_times,
    window_start,
)
from dataintel.model.aggregations import Aggregation
from dataintel.model.fields import FieldType
from dataintel.model.snapshot import ConfigSnapshot, EventSpec, FeatureSpec, FieldSpec, PipelineSpec
from dataintel.model.tiles import window_specs
from dataintel.storage import records
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.eventlog.port import LogEntry

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = 1_767_225_600 * SECOND  # 2026-01-01T00:00:00Z
WINDOWS = ["30s", "5m", "1h", "7d", "30d", "lifetime"]
P = "proj"


def spec(name: str, agg: Aggregation, field: str | None = None, **kw: Any) -> FeatureSpec:
    return FeatureSpec(
        name=name,
        pipeline_id=kw.pop("pipeline_id", "web"),
        source_event=kw.pop("source_event", "ev"),
        entity_key=kw.pop("entity_key", "user_id"),
        aggregation=agg,
        field=field,
        windows=kw.pop("windows", WINDOWS),
    )


ALL = [
    spec("n", Aggregation.COUNT),
    spec("nx", Aggregation.COUNT, "x"),
    spec("s", Aggregation.SUM, "x"),
    spec("a", Aggregation.AVG, "x"),
    spec("lo", Aggregation.MIN, "x"),
    spec("hi", Aggregation.MAX, "x"),
    spec("d", Aggregation.COUNT_DISTINCT, "k"),
    spec("dx", Aggregation.COUNT_DISTINCT, "x"),
    spec("f", Aggregation.FIRST, "k"),
    spec("l", Aggregation.LAST, "x"),
    spec("lk", Aggregation.LAST, "k"),
    spec("fc", Aggregation.FIRST, "cart_id"),
    spec("lc", Aggregation.LAST, "cart_id"),
]


@pytest.fixture(params=ENGINES)
def analytics(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnalyticsStore]:
    store = open_analytics(url(request.param, tmp_path))
    yield store
    store.close()


class World:
    def __init__(self, analytics: AnalyticsStore) -> None:
        self.analytics = analytics
        self.events: list[records.StoredEvent] = []

    def add(self, ts: int, user: str | None = "u1", **props: Any) -> None:
        cart = props.pop("cart", None)
        event = props.pop("event", "ev")
        pipeline = props.pop("pipeline", "web")
        project = props.pop("project", P)
        event_id = props.pop("event_id", f"e{len(self.events):05d}")
        self.events.append(stored(project, event_id, ts, user, props, cart, event, pipeline))

    def load(self) -> None:
        entries = [LogEntry(0, i, records.encode(e)) for i, e in enumerate(self.events)]
        self.analytics.apply(entries)

    def check(
        self, features: list[FeatureSpec], times: list[int], key: str = "user_id"
    ) -> dict[str, Any]:
        """compute_offline == reference for every entity (and an unknown one) at ``times``."""
        ids = sorted({i for e in self.events if (i := entity_of(dict(e), key)) is not None})
        ids.append("nobody")
        chosen = [f for f in features if f.entity_key == key]
        last: dict[str, Any] = {}
        for t in times:
            got = compute_offline(self.analytics, P, features, key, ids, t)
            for entity in ids:
                want: dict[str, Any] = {}
                for f in chosen:
                    want.update(reference_values(self.ev(), f, key, entity, t))
                assert set(got[entity]) == set(want)
                for name, value in want.items():
                    assert same(got[entity][name], value), (t - T0, entity, name, got[entity])
            last = got
        return last

    def ev(self) -> list[dict[str, Any]]:
        return [dict(e) for e in self.events if e["project_id"] == P]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return type(a) is type(b) and a == b


def test_window_edges_are_exact(analytics: AnalyticsStore) -> None:
    w = World(analytics)
    t = T0 + 10 * DAY + 123_456_789  # not aligned to any granularity
    for text in WINDOWS[:-1]:
        (ws,) = window_specs("n", [text])
        start = window_start(ws, t)
        assert start is not None
        assert start % ws.granularity_us == 0  # type: ignore[operator]
        assert start <= t - ws.span_us < start + ws.granularity_us  # type: ignore[operator]
        for ts in (start - 1, start, start + 1):
            w.add(ts, x=1.5, k=text)
    for ts in (t - 1, t, t + 1):
        w.add(ts, x=2.0, k="now")
    w.load()
    got = w.check(ALL, [t - 1, t + 1, t + 2, t])
    assert got["u1"]["n_lifetime"] == len(w.events) - 1  # the event at t + 1 µs is ahead


def test_every_window_boundary_at_many_times(analytics: AnalyticsStore) -> None:
    w = World(analytics)
    (m5,) = window_specs("n", ["5m"])
    for i in range(40):
        w.add(T0 + i * 7 * SECOND + (i % 3), x=i, k=f"k{i % 4}")
    w.add(T0 + 2 * DAY, x=-3.5, k="late")
    w.add(T0 + 8 * DAY, x=1e6, k="k1")
    w.load()
    t = T0 + 5 * MINUTE + 1
    start = window_start(m5, t)
    assert start is not None
    times = [t, start + 5 * MINUTE, start + 5 * MINUTE - 1, T0 + 4 * MINUTE + 59 * SECOND]
    times += [T0 + 2 * DAY, T0 + 7 * DAY + 1, T0 + 9 * DAY, T0 + 31 * DAY, T0 - 1]
    w.check(ALL, times)


def test_missing_null_and_empty_fields_are_skipped_except_by_count(
    analytics: AnalyticsStore,
) -> None:
    w = World(analytics)
    w.add(T0, x=None, k=None)
    w.add(T0 + 1, k="")
    w.add(T0 + 2)
    w.add(T0 + 3, user="u2", x=4, k="a")
    w.add(T0 + 4, user="u2", x=None, k=None)
    w.load()
    got = w.check(ALL, [T0 + 10])
    assert got["u1"]["n_5m"] == 3
    assert got["u1"]["nx_5m"] == 3
    assert got["u1"]["s_5m"] == 0.0
    assert got["u1"]["a_5m"] is None
    assert got["u1"]["l_5m"] is None
    assert got["u1"]["d_5m"] == 0
    assert got["u2"]["l_lifetime"] == 4
    assert got["u2"]["lk_lifetime"] == "a"


def test_null_entities_and_other_sources_are_ignored(analytics: AnalyticsStore) -> None:
    w = World(analytics)
    w.add(T0, user=None, x=100)
    w.add(T0, x=1, event="other")
    w.add(T0, x=2, pipeline="api")
    w.add(T0, x=3, project="elsewhere")
    w.add(T0, x=5)
    w.load()
    got = w.check(ALL, [T0])
    assert got["u1"]["s_lifetime"] == 5.0
    assert got["nobody"]["n_lifetime"] == 0
    assert got["nobody"]["s_lifetime"] == 0.0


def test_ties_in_time_are_broken_by_event_id(analytics: AnalyticsStore) -> None:
    w = World(analytics)
    w.add(T0, x=1, k="b", event_id="b", cart="c2")
    w.add(T0, x=2, k="c", event_id="c", cart="c3")
    w.add(T0, x=3, k="a", event_id="a", cart="c1")
    w.add(T0, x=None, k=None, event_id="z", cart=None)
    w.add(T0 + 1, k=None, event_id="0")
    w.load()
    got = w.check(ALL, [T0, T0 + 1])
    assert got["u1"]["f_lifetime"] == "a"
    assert got["u1"]["l_lifetime"] == 2
    assert got["u1"]["fc_30s"] == "c1"
    assert got["u1"]["lc_30s"] == "c3"
    _, times = compute_offline_with_times(analytics, P, ALL, "user_id", ["u1", "u9"], T0 + 1)
    assert times["u1"]["l_lifetime"] == T0
    assert times["u1"]["f_5m"] == T0
    assert times["u1"]["n_5m"] is None
    assert times["u9"]["l_5m"] is None


def test_json_types_and_distinct_keys(analytics: AnalyticsStore) -> None:
    w = World(analytics)
    for i, value in enumerate([1, 1.0, "1", 2.5, True, "x", 1e6, 1000000, -0.0, 0, 12.0]):
        w.add(T0 + i, x=value if not isinstance(value, str | bool) else None, k=value)
    w.load()
    features = [
        spec("d", Aggregation.COUNT_DISTINCT, "k"),
        spec("dx", Aggregation.COUNT_DISTINCT, "x"),
        spec("f", Aggregation.FIRST, "k"),
        spec("l", Aggregation.LAST, "x"),
        spec("lk", Aggregation.LAST, "k"),
        spec("s", Aggregation.SUM, "x"),
    ]
    times = [T0 + i for i in range(11)]
    got = w.check(features, times)
    # 1 and "1" share a key, 1.0 does not; -0.0 and 0 differ; 1e6 and 1000000 differ
    assert got["u1"]["d_lifetime"] == 10
    assert got["u1"]["l_lifetime"] == 12.0
    assert isinstance(got["u1"]["l_lifetime"], float)
    values = [compute_offline(analytics, P, features, "user_id", ["u1"], t)["u1"] for t in times]
    assert [v["lk_30s"] for v in values] == [
        1,
        1.0,
        "1",
        2.5,
        True,
        "x",
        1e6,
        1000000,
        -0.0,
        0,
        12.0,
    ]
    assert [type(v["lk_30s"]) for v in values][:2] == [int, float]


def test_property_entities(analytics: AnalyticsStore) -> None:
    w = World(analytics)
    w.add(T0, store="s1", x=1)
    w.add(T0 + 1, store=7, x=2)
    w.add(T0 + 2, store=7.0, x=3)
    w.add(T0 + 3, store="7", x=4)
    w.add(T0 + 4, store=None, x=5)
    w.add(T0 + 5, store="", x=6)
    w.add(T0 + 6, x=7)
    w.load()
    features = [
        spec("sn", Aggregation.COUNT, entity_key="store"),
        spec("ss", Aggregation.SUM, "x", entity_key="store"),
        spec("sl", Aggregation.LAST, "user_id", entity_key="store"),
    ]
    got = w.check(features, [T0 + 10], key="store")
    assert got["7"]["ss_lifetime"] == 6.0
    assert got["7.0"]["ss_lifetime"] == 3.0
    assert got["s1"]["sl_lifetime"] == "u1"


def test_cart_features_and_no_features(analytics: AnalyticsStore) -> None:
    w = World(analytics)
    w.add(T0, cart="c1", x=1)
    w.add(T0 + SECOND, user="u2", cart="c1", x=2)
    w.add(T0 + 2 * SECOND, user=None, cart="c1", x=3)
    w.load()
    features = [
        spec("cn", Aggregation.COUNT, entity_key="cart_id"),
        spec("owner", Aggregation.LAST, "user_id", entity_key="cart_id", windows=["lifetime"]),
        spec("cs", Aggregation.AVG, "x", entity_key="cart_id", windows=["30s"]),
    ]
    got = w.check(features, [T0 + 3 * SECOND], key="cart_id")
    assert got["c1"] == pytest.approx(
        {f"cn_{x}": 3 for x in WINDOWS} | {"owner_lifetime": "u2", "cs_30s": 2.0}
    )
    assert compute_offline(analytics, P, features, "user_id", ["u1"], T0) == {"u1": {}}
    assert compute_offline(analytics, P, features, "cart_id", [], T0) == {}


@pytest.mark.parametrize(
    "text", ["30s", "199s", "200s", "5m", "1h", "12000s", "24h", "7d", "30d", "365d"]
)
def test_long_and_odd_windows(analytics: AnalyticsStore, text: str) -> None:
    w = World(analytics)
    (ws,) = window_specs("n", [text])
    assert ws.span_us is not None
    assert ws.granularity_us is not None
    t = T0 + 400 * DAY + 987_654_321
    start = window_start(ws, t)
    assert start is not None
    for i, ts in enumerate([start - 1, start, start + 1, t - ws.span_us, t - 1, t, t + 1]):
        w.add(ts, x=float(i), k=f"k{i}")
    w.load()
    features = [
        spec(name, agg, None if agg is Aggregation.COUNT else "x", windows=[text])
        for name, agg in [
            ("n", Aggregation.COUNT),
            ("s", Aggregation.SUM),
            ("lo", Aggregation.MIN),
            ("f", Aggregation.FIRST),
        ]
    ]
    got = w.check(features, [t, start + ws.span_us])
    assert got["u1"][f"n_{text}"] >= 1


# --- timestamps, envelope fields as aggregation fields, the id rule ------------------------

TYPED = ConfigSnapshot(
    pipelines=[
        PipelineSpec(
            id="web",
            name="Web",
            events=[
                EventSpec(
                    name="ev",
                    fields=[
                        FieldSpec(name="seen", type=FieldType.TIMESTAMP),
                        FieldSpec(name="k", type=FieldType.STRING),
                        FieldSpec(name="product", type=FieldType.STRING),
                    ],
                )
            ],
        )
    ]
)
INSTANTS = [
    spec("first_seen", Aggregation.MIN, "seen"),
    spec("last_seen", Aggregation.MAX, "seen"),
    spec("t_lo", Aggregation.MIN, "timestamp"),
    spec("t_hi", Aggregation.MAX, "timestamp"),
    spec("t_last", Aggregation.LAST, "timestamp"),
    spec("carts", Aggregation.COUNT_DISTINCT, "cart_id"),
    spec("names", Aggregation.COUNT_DISTINCT, "event"),
    spec("ids", Aggregation.LAST, "event_id"),
]
BY_PRODUCT = [
    spec("buyers", Aggregation.COUNT_DISTINCT, "user_id", entity_key="product"),
    spec("sessions", Aggregation.COUNT_DISTINCT, "session_id", entity_key="product"),
    spec("p_hi", Aggregation.MAX, "seen", entity_key="product"),
]


def test_timestamps_and_envelope_fields_aggregate_exactly(analytics: AnalyticsStore) -> None:
    """MIN/MAX of a timestamp property (ISO-8601 with any offset, naive, epoch s and ms) and
    of the envelope timestamp are instants served as ISO-8601 text; envelope ids are fields."""
    w = World(analytics)
    seen = [
        "2025-12-31T23:00:00+02:00",  # = 21:00Z
        "2025-12-31T22:30:00.5Z",
        1_767_222_000,  # epoch s: 2025-12-31T23:00:00Z
        1_767_222_000_123,  # epoch ms
        "2025-12-31 20:00:00",  # naive: UTC
        "",  # missing
    ]
    for i, value in enumerate(seen):
        w.add(T0 - (10 - i) * MINUTE, cart=f"c{i % 3}", seen=value, k="a", product="p1")
    w.add(T0 - MINUTE, user="u2", seen="2026-01-01T00:00:00Z", product="p1")
    w.add(T0 - MINUTE, user="u3", seen=1, product="x" * 257)  # no id: longer than 256
    w.load()
    times = [T0 - 7 * MINUTE, T0]
    got = _check_typed(w, INSTANTS, "user_id", times)
    assert got["u1"]["first_seen_lifetime"] == "2025-12-31T20:00:00.000000Z"
    assert got["u1"]["last_seen_lifetime"] == "2025-12-31T23:00:00.123000Z"
    assert got["u1"]["t_hi_lifetime"] == "2025-12-31T23:55:00.000000Z"
    assert got["u1"]["carts_lifetime"] == 3
    got = _check_typed(w, BY_PRODUCT, "product", times)
    assert got["p1"]["buyers_lifetime"] == 2
    assert "x" * 257 not in got


def _check_typed(
    w: World, features: list[FeatureSpec], key: str, times: list[int]
) -> dict[str, Any]:
    ids = sorted({i for e in w.events if (i := entity_of(dict(e), key)) is not None})
    got: dict[str, Any] = {}
    for t in times:
        got = compute_offline(w.analytics, P, features, key, [*ids, "nobody"], t, TYPED)
        for entity in [*ids, "nobody"]:
            want: dict[str, Any] = {}
            for f in features:
                want.update(reference_values(w.ev(), f, key, entity, t, instants=f.field == "seen"))
            assert got[entity] == want, (t - T0, entity)
    return got
