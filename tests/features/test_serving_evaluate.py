"""The serving evaluator (``features.evaluate``) gives exactly what ``tiles.evaluate`` gives,
at the same t, on the blobs the real sinks write into both online stores.

Random streams (late, future, duplicate events; all 8 aggregations; windows 30 s to 30 d and
lifetime) go through the real engine in micro-batches. After each batch, each stored blob is
evaluated at instants on either side of tile and window boundaries (a window's start moving,
a parent tile closing, an event's own tile) by both evaluators; values and event times must be
equal and of the same type. The serving evaluator keeps a sorted index per blob object, so
this also checks that a blob changed by a new event is never evaluated with an old index, that
an index built at one t is right at every other t, and that an answer it remembers (until
the instant a value may change) is never given after that instant.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import apply_yaml
from tests.features.conftest import OnlineFactory
from tests.features.streams import PROPERTY_FEATURES, Driver, stored

from dataintel.config.deployments.active import CONFIGS
from dataintel.features.online.engine import FeatureEngine
from dataintel.features.serving import evaluate as serving_eval
from dataintel.model import tiles
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.online.port import EntityRef

SECOND = 1_000_000
DAY = 86_400 * SECOND
T0 = 1_767_225_600 * SECOND + 123_456  # not on a tile boundary

event = st.tuples(
    st.one_of(
        st.integers(0, 40 * DAY), st.integers(0, 3 * 3600 * SECOND), st.integers(0, 300 * SECOND)
    ),
    st.one_of(st.just(0), st.integers(0, 90 * SECOND), st.integers(0, 2 * DAY)),
    st.sampled_from(["u1", "u2", None]),
    st.sampled_from(["c1", None]),
    st.one_of(st.none(), st.integers(-5, 50), st.sampled_from([0.5, 2.25, -1.125, 1e6])),
    st.one_of(st.none(), st.sampled_from(["a", "b", "1"])),
    st.booleans(),
)


@pytest.fixture
def world(app: Any, online_factory: OnlineFactory, tmp_path: Any) -> Any:
    apply_yaml(app, PROPERTY_FEATURES)
    return app.state.dataintel, online_factory, tmp_path


def boundary_times(now: int, events: list[int], rng: random.Random) -> list[int]:
    """Instants just before, at and after boundaries where a served value can change."""
    out = {now, now + 1}
    for size in tiles.SIZES[1:]:
        edge = (now // size + 1) * size  # the next second, minute, hour, day
        out |= {edge - 1, edge, edge + 1}
    for ts in rng.sample(events, min(3, len(events))):
        for span, g in ((300, 1), (86_400, 60), (30 * 86_400, 3600), (3600, 1)):
            start_moves = ts + span * SECOND  # the window's start passes the event's tile
            out |= {start_moves - 1, start_moves, start_moves + g * SECOND}
        out |= {ts - 1, ts, ts + 1}
    return sorted(t for t in out if t >= now - 50 * SECOND)


# One windows object per feature version, as a server's catalog keeps it: the evaluator
# remembers an answer per (blob, windows) with the instant until which it cannot change.
WINDOWS: dict[str, tuple[tiles.WindowSpec, ...]] = {}


def check(driver: Driver, t: int) -> int:
    checks = 0
    for plan in driver.plans():
        windows = WINDOWS.setdefault(plan.state_field, plan.windows)
        ids = {"user_id": ["u1", "u2", "u3"], "cart_id": ["c1"]}
        refs = [
            EntityRef(driver.project_id, plan.entity_key, i) for i in ids.get(plan.entity_key, [])
        ]
        for found in driver.online.read(refs, [plan.state_field]):
            blob = found.get(plan.state_field)
            want = tiles.evaluate(plan.aggregation, blob, windows, t)
            got = serving_eval.evaluate(plan.aggregation, blob, windows, t)
            assert got == want, (plan.name, t, got, want)
            for name, (value, when) in got.items():
                assert type(value) is type(want[name][0]), (plan.name, name, value)
                assert when == want[name][1]
            checks += 1
    return checks


CASES = iter(range(10**6))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(event, min_size=1, max_size=60), batch=st.integers(1, 30))
def test_serving_evaluator_equals_reference_at_every_boundary(
    world: Any, rows: Any, batch: int
) -> None:
    state, make_online, tmp_path = world
    case = next(CASES)
    online = make_online()
    analytics = open_analytics(f"duckdb:///{tmp_path}/s{case}.duckdb")
    clock = {"now": T0}
    engine = FeatureEngine(
        online, analytics, state.port(CONFIGS), state.sessions, lambda: clock["now"]
    )
    driver = Driver(engine, analytics, online, "prop")
    arrivals = []
    for i, (off, delay, user, cart, x, k, dup) in enumerate(rows):
        props = {n: v for n, v in (("x", x), ("k", k)) if v is not None}
        ev = stored("prop", f"v{case}-{i:04d}", T0 + off, user, props, cart)
        arrivals.append((T0 + off + delay, ev, dup))
    arrivals.sort(key=lambda a: a[0])
    checks = 0
    times: list[int] = []
    for start in range(0, len(arrivals), batch):
        chunk = arrivals[start : start + batch]
        clock["now"] = max(a for a, _, _ in chunk)
        events = [ev for _, ev, _ in chunk] + [ev for _, ev, dup in chunk if dup]
        driver.apply(driver.append(events), clock["now"])
        times = boundary_times(clock["now"], [ev["ts"] for _, ev, _ in chunk], random.Random(case))
        for t in times:
            checks += check(driver, t)
    for t in reversed(times):  # indexes built at later t, evaluated at earlier ones
        checks += check(driver, t)
    engine.close()
    analytics.close()
    assert checks > 0


def test_index_is_per_blob_object_and_follows_a_replaced_blob() -> None:
    """A new event makes a new blob object: it gets its own index (the old one is never
    used for it), while the old blob keeps answering as before."""
    agg = tiles.Aggregation.SUM
    windows = tiles.window_specs("s", ["5m", "lifetime"])
    cuts = tiles.cutoffs(tiles.keeps(windows), T0)
    one = tiles.apply_partial(agg, None, {"1": {T0 - T0 % SECOND: 2.0}}, T0, cuts, True)
    before = serving_eval.evaluate(agg, one, windows, T0 + SECOND)
    two = tiles.apply_partial(
        agg,
        {"t": {k: dict(v) for k, v in one["t"].items()}, "b": None, "e": None, "l": T0},
        {"1": {T0 + SECOND - T0 % SECOND: 3.0}},
        T0 + SECOND,
        cuts,
        True,
    )
    t = T0 + 2 * SECOND
    assert serving_eval.evaluate(agg, two, windows, t) == tiles.evaluate(agg, two, windows, t)
    assert serving_eval.evaluate(agg, two, windows, t)["s_lifetime"][0] == 5.0
    assert serving_eval.evaluate(agg, one, windows, T0 + SECOND) == before
    assert before["s_lifetime"][0] == 2.0


def test_the_index_map_is_bounded_by_tiles_and_stays_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving_eval, "INDEX_CACHE_TILES", 50)
    agg = tiles.Aggregation.COUNT
    windows = tiles.window_specs("n", ["5m", "24h", "lifetime"])
    cuts = tiles.cutoffs(tiles.keeps(windows), T0)
    blobs = []
    for i in range(40):
        ts = T0 - i * 7 * SECOND
        partial = {str(lvl): {ts - ts % size: 1} for lvl, size in enumerate(tiles.SIZES) if lvl}
        blobs.append(
            tiles.apply_partial(agg, blobs[-1] if blobs else None, partial, ts, cuts, True)
        )
        blobs[-1] = {
            "t": {k: dict(v) for k, v in blobs[-1]["t"].items()},
            "b": None,
            "e": None,
            "l": ts,
        }
    for t in (T0 + 1, T0 + 400 * SECOND):
        for blob in blobs:
            assert serving_eval.evaluate(agg, blob, windows, t) == tiles.evaluate(
                agg, blob, windows, t
            )
            held = sum(index.tiles + 1 for _, index in serving_eval._indexes.values())
            assert held <= 50 or len(serving_eval._indexes) == 1  # one bigger blob alone
