"""Property tests: the vectorised engine against the brute-force reference on random streams
(ties on timestamps, duplicate events, events matching several steps, several attempts,
exclusions, per-step windows), in every mode; cut into slices of entities, the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataintel.analytics.funnels_engine import compute
from dataintel.analytics.funnels_query import from_table
from dataintel.analytics.funnels_spec import (
    EventMatch,
    Exclusion,
    FunnelMode,
    FunnelSpec,
)
from tests.analytics.funnel_reference import Ev, funnel

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_US = int(T0.timestamp() * 1_000_000)
SEC = 1_000_000


def _table(events: list[Ev], n: int) -> pa.Table:
    rows = sorted(events, key=lambda e: (e.entity, e.t, e.breakdown is None, e.breakdown or ""))
    masks = []
    for e in rows:
        m = sum(1 << (s - 1) for s in e.steps)
        m += sum(1 << (n + x - 1) for x in e.exclusions)
        masks.append(m)
    return pa.table(
        {
            "entity": pa.array([e.entity for e in rows], pa.string()),
            "ts": pa.array([T0_US + e.t for e in rows], pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "mask": pa.array(masks, pa.int64()),
            "breakdown": pa.array([e.breakdown for e in rows], pa.string()),
        }
    )


@st.composite
def streams(
    draw: st.DrawFn,
) -> tuple[list[Ev], int, str, int, dict[int, int], list[tuple[int, int]]]:
    n = draw(st.integers(2, 4))
    mode = draw(st.sampled_from(["ordered", "strict", "unordered"]))
    window = draw(st.integers(1, 12)) * SEC
    n_ex = draw(st.integers(0, 2))
    exclusions = []
    for _ in range(n_ex):
        if mode == "unordered":
            exclusions.append((1, n))
        else:
            a = draw(st.integers(1, n - 1))
            exclusions.append((a, draw(st.integers(a + 1, n))))
    step_windows = {}
    if mode != "unordered":
        for k in range(2, n + 1):
            if draw(st.booleans()) and draw(st.booleans()):
                step_windows[k] = draw(st.integers(0, 6)) * SEC
    events = []
    for entity in draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=3, unique=True)):
        for _ in range(draw(st.integers(1, 9))):
            t = draw(st.integers(0, 20)) * SEC
            kind = draw(st.integers(0, 3))
            if kind == 0 and n_ex:
                ev = Ev(entity, t, frozenset(), frozenset({draw(st.integers(1, n_ex))}))
            elif kind == 1 and mode == "strict":
                ev = Ev(entity, t, frozenset())  # an unrelated event
            else:
                size = 1 if mode == "unordered" else draw(st.integers(1, 2))
                steps = draw(st.sets(st.integers(1, n), min_size=1, max_size=size))
                bd = draw(st.sampled_from([None, "x", "y"]))
                ev = Ev(entity, t, frozenset(steps), breakdown=bd)
            events.append(ev)
    return events, n, mode, window, step_windows, exclusions


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_engine_matches_brute_force(case) -> None:  # type: ignore[no-untyped-def]
    events, n, mode, window, step_windows, exclusions = case
    end_us = 25 * SEC
    spec = FunnelSpec(
        steps=tuple(EventMatch(f"s{k}") for k in range(1, n + 1)),
        start=T0,
        end=T0 + timedelta(microseconds=end_us),
        mode=FunnelMode(mode),
        window=timedelta(microseconds=window),
        step_windows={k: timedelta(microseconds=v) for k, v in step_windows.items()},
        exclusions=tuple(
            Exclusion(EventMatch(f"x{i}"), a, b) for i, (a, b) in enumerate(exclusions)
        ),
    )
    table = _table(events, n)
    ev = from_table(table)
    got = compute(ev, spec)
    # cut into slices of entities computed in threads (as for large inputs): the same
    for parts in (2, 3):
        cut = compute(ev, spec, parts=parts)
        assert np.array_equal(cut.level, got.level)
        assert np.array_equal(cut.excluded, got.excluded)
        assert np.array_equal(cut.pending, got.pending)
        assert np.array_equal(cut.first_row, got.first_row)
        assert np.array_equal(cut.gaps, got.gaps, equal_nan=True)
    expected = funnel(events, n, mode, window, end_us, step_windows, exclusions)
    names = sorted({e.entity for e in events})
    for code, name in enumerate(names):
        want = expected.get(name)
        level = int(got.level[code])
        if want is None:
            assert level == 0, (name, level)
            continue
        assert level == want.level, (name, level, want)
        assert bool(got.excluded[code]) == want.excluded, (name, want)
        assert bool(got.pending[code]) == want.pending, (name, want)
        if not want.excluded:
            gaps = tuple(int(g) for g in got.gaps[code][: want.level - 1])
            assert gaps in want.gap_options, (name, gaps, want.gap_options)
        row = int(got.first_row[code])
        value = table.column("breakdown")[row].as_py() if row >= 0 else None
        assert value == want.breakdown, (name, value, want.breakdown)
    assert np.all(got.level[len(names) :] == 0)
