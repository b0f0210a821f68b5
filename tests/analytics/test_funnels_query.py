"""The two shapes of the funnel query on chDB (``grouped_sql``, its fast path, and the row
shape ``funnel_sql`` it falls back to) give the same events, and both stores the same funnel.

Random events with ties on timestamps, step filters, exclusions, a breakdown and events of
another project or outside the range; every mode."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dataintel.analytics.funnels import run_funnel
from dataintel.analytics.funnels_engine import compute
from dataintel.analytics.funnels_query import (
    FunnelEvents,
    fetch,
    from_table,
    funnel_sql,
    packing,
)
from dataintel.analytics.funnels_spec import (
    EventMatch,
    Exclusion,
    FunnelMode,
    FunnelSpec,
    PropertyFilter,
)
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from tests.analytics.store_writer import write

T0 = datetime(2024, 3, 1, tzinfo=UTC)
TO = T0 + timedelta(hours=6)


def _events() -> list[dict[str, Any]]:
    rng = np.random.default_rng(11)
    rows = []
    for i in range(400):
        user = f"u{rng.integers(0, 40)}"
        props: dict[str, Any] = {}
        if rng.random() < 0.5:
            props["country"] = str(rng.choice(["de", "fr", "it", ""]))
        if rng.random() < 0.5:
            props["revenue"] = float(rng.integers(0, 3))
        rows.append(
            {
                "event": str(rng.choice(["a", "b", "c", "x", "other"])),
                # minutes, so many events of one user share a timestamp
                "ts": T0 + timedelta(minutes=int(rng.integers(-20, 7 * 60))),
                "user_id": None if i % 37 == 0 else user,
                "properties": props,
            }
        )
    return rows


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AnalyticsStore]]:
    where: Path = tmp_path_factory.mktemp("funnel-shapes")
    opened = {
        "chdb": open_analytics(f"chdb:///{where}/ch"),
        "duckdb": open_analytics(f"duckdb:///{where}/a.duckdb"),
    }
    rows = _events()
    try:
        for store in opened.values():
            write(store, rows)
            write(store, rows[:50], project_id="other")
        yield opened
    finally:
        for store in opened.values():
            store.close()


def _spec(mode: FunnelMode, breakdown: str | None, **extra: Any) -> FunnelSpec:
    steps = (
        EventMatch("a"),
        EventMatch("b"),
        EventMatch("c", (PropertyFilter("revenue", ">", 0.0),)),
    )
    exclusions = (Exclusion(EventMatch("x"), 1, 3),)
    args: dict[str, Any] = {
        "steps": steps,
        "start": T0,
        "end": TO,
        "mode": mode,
        "window": timedelta(hours=1),
        "exclusions": exclusions,
        "breakdown": breakdown,
    }
    return FunnelSpec(**{**args, **extra})


SPECS = [
    pytest.param(_spec(mode, breakdown), id=f"{mode.value}-{breakdown}")
    for mode in FunnelMode
    for breakdown in (None, "country")
]


def _rows(ev: FunnelEvents) -> list[tuple[int, int, int, str | None]]:
    """The rows as (entity, t, mask, breakdown), ties in one canonical order."""
    values = ev.breakdown.to_pylist() if ev.breakdown is not None else [None] * ev.t.size
    rows = zip(ev.entity.tolist(), ev.t.tolist(), ev.mask.tolist(), values, strict=True)
    return sorted(rows, key=lambda r: (r[0], r[1], r[3] is None, r[3] or "", r[2]))


@pytest.mark.parametrize("spec", SPECS)
def test_grouped_shape_holds_the_rows_of_the_row_shape(
    stores: dict[str, AnalyticsStore], spec: FunnelSpec
) -> None:
    store = stores["chdb"]
    assert packing(spec) is not None  # the fast path is the one under test
    grouped = fetch(store, spec, "shop")
    rows = from_table(store.sql(*funnel_sql(spec, "shop", store.dialect)))
    assert grouped.n_entities == rows.n_entities > 0
    assert np.array_equal(grouped.entity, rows.entity)  # entities in the same order
    assert np.array_equal(grouped.t, rows.t)  # each entity's rows in time order
    assert _rows(grouped) == _rows(rows)
    if spec.breakdown is not None:  # ties: the smallest breakdown value first, nulls last
        for ev in (grouped, rows):
            assert ev.breakdown is not None
            values = ev.breakdown.to_pylist()
            for i in range(1, ev.t.size):
                same = ev.entity[i] == ev.entity[i - 1] and ev.t[i] == ev.t[i - 1]
                if same and values[i] is not None:
                    before = values[i - 1]
                    assert before is not None
                    assert before <= values[i]
    a, b = compute(grouped, spec), compute(rows, spec)
    assert np.array_equal(a.level, b.level)
    assert np.array_equal(a.excluded, b.excluded)
    assert np.array_equal(a.pending, b.pending)
    assert np.array_equal(a.gaps, b.gaps, equal_nan=True)


@pytest.mark.parametrize("spec", SPECS)
def test_both_stores_give_the_same_funnel(
    stores: dict[str, AnalyticsStore], spec: FunnelSpec
) -> None:
    assert run_funnel(stores["chdb"], "shop", spec) == run_funnel(stores["duckdb"], "shop", spec)


def test_a_range_too_long_to_pack_falls_back_to_rows(stores: dict[str, AnalyticsStore]) -> None:
    steps = tuple(EventMatch(name) for name in ("a", "b", "c", "a", "b", "c") * 2)
    spec = FunnelSpec(
        steps=steps,
        start=T0 - timedelta(days=3000),
        end=TO,
        exclusions=tuple(Exclusion(EventMatch("x"), 1, 12) for _ in range(8)),
    )
    assert packing(spec) is None  # 20 mask bits and 8 years of µs overflow Int64
    short = FunnelSpec(steps=steps, start=T0, end=TO, exclusions=spec.exclusions)
    assert packing(short) is not None
    got = run_funnel(stores["chdb"], "shop", spec)
    assert got == run_funnel(stores["duckdb"], "shop", spec)
    assert got.total.steps[0].entered > 0
