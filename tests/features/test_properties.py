"""Online == offline == brute force, on random event streams (hypothesis).

Random entities, late events (arriving up to days after their event time), events in the
(near) future, duplicates of an event in the log, all 8 aggregations, windows from 30 s to
30 d and lifetime; the stream goes through the real sinks (DuckDB analytics, then the online
store: embedded and Redis) in micro-batches with a processor clock that moves with arrivals.
At many evaluation times the online value, the offline SQL value and a brute-force
reference over the raw events must agree.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import apply_yaml
from tests.features.conftest import OnlineFactory
from tests.features.reference import reference_values
from tests.features.streams import PROPERTY_FEATURES, Driver, stored

from dataintel.config.deployments.active import CONFIGS
from dataintel.config.deployments.service import DeploymentService
from dataintel.features.offline.compute import compute_offline
from dataintel.features.online.engine import FeatureEngine
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.metadata.models import Project

SECOND = 1_000_000
DAY = 86_400 * SECOND
T0 = 1_767_225_600 * SECOND  # 2026-01-01T00:00:00Z

values = st.one_of(
    st.none(),
    st.integers(-5, 50),
    st.sampled_from([0.5, 2.25, -1.125, 1e6]),
)
keys = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "1"]))
# (event time offset µs, arrival delay µs, user, cart, store, x, k, duplicate?)
event = st.tuples(
    st.one_of(
        st.integers(0, 40 * DAY),
        st.integers(0, 3 * 3600 * SECOND),  # dense: many events in a few hours
        st.integers(0, 5 * 60 * SECOND),  # denser: same seconds and minutes
    ),
    st.one_of(st.just(0), st.integers(0, 90 * SECOND), st.integers(0, 2 * DAY)),
    st.sampled_from(["u1", "u2", "u3", None]),
    st.sampled_from(["c1", "c2", None]),
    st.sampled_from(["s1", "s2", None]),
    values,
    keys,
    st.booleans(),
)


# The deployment steps of every generated case: v1 (PROPERTY_FEATURES) is active at the
# start; at three cut points (in arrivals) v2 (changed windows: new feature versions) is
# deployed, then v1 rolled back to (its versions missed the events applied under v2), then
# v2 re-deployed. Each step is followed by the processor's backfill, then checks.
PROPERTY_V2 = PROPERTY_FEATURES.replace(
    "aggregation: SUM, field: x,\n     windows: [30s, 5m, 1h, 24h, 7d, 30d, lifetime]}",
    "aggregation: SUM, field: x,\n     windows: [5m, 24h, lifetime]}",
).replace(
    "aggregation: COUNT_DISTINCT, field: k,\n     windows: [30s, 1h, 7d, lifetime]}",
    "aggregation: COUNT_DISTINCT, field: k,\n     windows: [1h, 30d, lifetime]}",
)
assert PROPERTY_V2.count("[5m, 24h, lifetime]") == PROPERTY_V2.count("[1h, 30d, lifetime]") == 1


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return (bool(a == b) and type(a) is type(b)) or (a == b and not isinstance(a, bool))


@pytest.fixture
def world(app: Any, online_factory: OnlineFactory, tmp_path: Any) -> Any:
    apply_yaml(app, PROPERTY_FEATURES)
    state = app.state.dataintel
    return app, state, online_factory, tmp_path


def step(app: Any, name: str) -> None:
    """Deploy v2, or roll back to version 1, as the config API does."""
    if name == "v2":
        apply_yaml(app, PROPERTY_V2)
        return
    state = app.state.dataintel
    with state.sessions.begin() as session:
        project = session.get(Project, "prop")
        assert project is not None
        DeploymentService(session, state.port(CONFIGS)).rollback(project, 1, "tests", None, True)


def run_stream(
    world: Any, rows: list[tuple[Any, ...]], batch: int, case: int, cuts: list[float]
) -> int:
    app, state, make_online, tmp_path = world
    online = make_online()
    analytics = open_analytics(f"duckdb:///{tmp_path}/a{case}.duckdb")
    clock = {"now": T0}
    engine = FeatureEngine(
        online, analytics, state.port(CONFIGS), state.sessions, lambda: clock["now"]
    )
    project = "prop"
    driver = Driver(engine, analytics, online, project)
    # arrival order: event time + delay; a duplicate is appended again right after
    arrivals = []
    for i, (off, delay, user, cart, store, x, k, dup) in enumerate(rows):
        props: dict[str, Any] = {}
        if x is not None:
            props["x"] = x
        if k is not None:
            props["k"] = k
        if store is not None:
            props["store"] = store
        ev = stored(project, f"c{case}-e{i:04d}", T0 + off, user, props, cart)
        arrivals.append((T0 + off + delay, ev, dup))
    arrivals.sort(key=lambda a: a[0])
    applied: list[Any] = []
    checks = 0
    if any(p.version != 1 for p in driver.plans()):  # an earlier example left v2 active
        step(app, "v1")
    engine.maybe_backfill(force=True)  # v1 built (empty) before the first event
    n = len(arrivals)
    steps = [(round(f * n), name) for f, name in zip(cuts, ["v2", "v1", "v2"], strict=True)]
    for start in [*range(0, n, batch), n]:
        while steps and steps[0][0] <= start:
            step(app, steps.pop(0)[1])
            engine.maybe_backfill(force=True)
            checks += compare(driver, analytics, applied, project, clock["now"])
        chunk = arrivals[start : start + batch]
        if not chunk:
            break
        events = [ev for _, ev, _ in chunk] + [ev for _, ev, dup in chunk if dup]
        clock["now"] = max(a for a, _, _ in chunk)
        driver.apply(driver.append(events), clock["now"])
        applied.extend(ev for _, ev, _ in chunk)
        for t in evaluation_times(applied, driver, clock["now"], random.Random(case + start)):
            checks += compare(driver, analytics, applied, project, t)
    engine.close()
    analytics.close()
    return checks


def evaluation_times(applied: list[Any], driver: Driver, now: int, rng: random.Random) -> set[int]:
    """Now, and instants that put a window's start or end exactly on an event: t = ts + W
    (its first tile included) and ts + W + g (excluded), t = ts and ts - 1 µs (recent events;
    the online store answers for t from a minute before its clock on)."""
    times = {now, now + 777_777}
    windows = [w for p in driver.plans() for w in p.windows if w.span_us is not None]
    for event in rng.sample(applied, min(2, len(applied))):
        w = rng.choice(windows)
        assert w.granularity_us is not None
        assert w.span_us is not None
        for t in (event["ts"] + w.span_us, event["ts"] + w.span_us + w.granularity_us):
            if t >= now:
                times.add(t)
    for event in applied[-2:]:
        for t in (event["ts"], event["ts"] - 1):
            if t >= now - 50 * SECOND:
                times.add(t)
    return times


def compare(driver: Driver, analytics: Any, applied: list[Any], project: str, t: int) -> int:
    checks = 0
    plans = [p for p in driver.plans() if p.name != "_owner"]
    built = driver.online.built(project)
    assert all(p.state_field in built for p in plans), (built, [p.state_field for p in plans])
    for entity_key, ids in (
        ("user_id", ["u1", "u2", "u3"]),
        ("cart_id", ["c1", "c2"]),
        ("store", ["s1", "s2"]),
    ):
        mine = [p for p in plans if p.entity_key == entity_key]
        online = driver.online_values(entity_key, ids, t)
        offline = compute_offline(
            analytics, project, [spec(driver, p) for p in mine], entity_key, ids, t
        )
        for entity_id in ids:
            for plan in mine:
                expected = reference_values(applied, spec(driver, plan), entity_key, entity_id, t)
                for w in plan.windows:
                    want = expected[w.value_name]
                    got_on = online[entity_id][w.value_name]
                    got_off = offline[entity_id][w.value_name]
                    assert close(want, got_on), (plan.name, w.window, entity_id, t, want, got_on)
                    assert close(want, got_off), (plan.name, w.window, entity_id, t, want, got_off)
                    checks += 1
    return checks


def spec(driver: Driver, plan: Any) -> Any:
    snapshot = driver.engine.configs.get(driver.project_id).snapshot
    return snapshot.feature(plan.name)


CASES = iter(range(10**6))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(event, min_size=1, max_size=80),
    batch=st.integers(1, 40),
    cuts=st.lists(st.floats(0, 1), min_size=3, max_size=3).map(sorted),
)
def test_online_equals_offline_equals_brute_force(
    world: Any, rows: Any, batch: int, cuts: list[float]
) -> None:
    """... across a deploy of changed windows, a rollback and a re-deploy."""
    assert run_stream(world, rows, batch, next(CASES), cuts) > 0
