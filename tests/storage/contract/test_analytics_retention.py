"""AnalyticsStore.delete_events_before (retention), on DuckDB and on ClickHouse (chDB): the
rows past their event's cutoff go, the others stay, the erasure count moves only when rows
went, and (DuckDB, whose file is rewritten) the expired values leave the file's bytes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dataintel.model.retention import EventCutoffs
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from tests.storage.contract.test_analytics import ENGINES, T0, entry, url

OLD, NEW = T0 - timedelta(days=50), T0 - timedelta(days=5)
MARKER = "expired-marker-5b1f"


def remaining(store: AnalyticsStore, project: str = "p1") -> set[str]:
    rows = store.sql("SELECT event_id FROM events WHERE project_id = ?", [project])
    return {str(v) for v in rows.column("event_id").to_pylist()}


def fill(store: AnalyticsStore) -> None:
    """view/cart/purchase, one old and one new each, in p1; the same in p2."""
    entries = []
    for i, (name, when) in enumerate(
        [(n, w) for n in ("view", "cart", "purchase") for w in (OLD, NEW)]
    ):
        props = {"note": MARKER if when == OLD else "kept"}
        entries.append(entry(0, i, f"{name}-{i}", event=name, when=when, properties=props))
        entries.append(entry(1, i, f"p2-{name}-{i}", event=name, when=when, project_id="p2"))
    store.apply(entries)


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnalyticsStore]:
    opened = open_analytics(url(request.param, tmp_path))
    yield opened
    opened.close()


def test_per_event_cutoffs_and_a_default(store: AnalyticsStore) -> None:
    fill(store)
    before = store.erasures()
    cutoff = T0 - timedelta(days=30)
    cutoffs = EventCutoffs({"view": T0 - timedelta(days=1), "purchase": None}, cutoff)
    assert store.delete_events_before("p1", cutoffs) == 3  # both views, the old cart
    assert remaining(store) == {"cart-3", "purchase-4", "purchase-5"}
    assert len(remaining(store, "p2")) == 6  # another project's events stay
    assert store.erasures() == before + 1
    assert store.delete_events_before("p1", cutoffs) == 0  # nothing left to expire
    assert store.erasures() == before + 1  # and the cache watermark did not move


def test_a_default_only_policy_and_an_empty_one(store: AnalyticsStore) -> None:
    fill(store)
    assert store.delete_events_before("p1", EventCutoffs()) == 0
    assert store.delete_events_before("p1", EventCutoffs({"view": None})) == 0
    assert store.delete_events_before("p1", EventCutoffs({}, T0 - timedelta(days=30))) == 3
    assert remaining(store) == {"view-1", "cart-3", "purchase-5"}


def test_event_names_are_bound_not_spliced(store: AnalyticsStore) -> None:
    fill(store)
    odd = EventCutoffs({"x' OR '1'='1": T0}, None)
    assert store.delete_events_before("p1", odd) == 0
    assert len(remaining(store)) == 6


def test_duckdb_expired_values_leave_the_file(tmp_path: Path) -> None:
    store = open_analytics(f"duckdb:///{tmp_path}/a.duckdb")
    try:
        fill(store)
        assert store.delete_events_before("p1", EventCutoffs({}, T0 - timedelta(days=30))) == 3
    finally:
        store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert MARKER.encode() not in raw
    assert b"kept" in raw
