"""Ordered funnels on the real REES46 and Taobao slices equal ClickHouse's own
``windowFunnel`` (run by chDB straight on the CSV files, independent of this service)."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chdb import session as chdb_session

from dataintel.analytics.funnels import run_funnel
from dataintel.analytics.funnels_spec import EventMatch, FunnelEntity, FunnelSpec
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from tests.analytics.store_writer import write
from tests.ingest.test_real_data import REAL, _file

REES46 = REAL / "rees46-multicategory/2019-Oct_head_20191001T0000-0250Z.csv.gz"
TAOBAO = REAL / "taobao-userbehavior/UserBehavior_slice_20171126T0100-0310Z.csv.gz"
TAOBAO_USERS = REAL / "taobao-userbehavior/UserBehavior_last10000rows_users_999477-999999.csv.gz"


@pytest.fixture(autouse=True)
def _real_data() -> None:
    """The slices live beside the checkout (or $DATAINTEL_REAL_DATA): missing, these tests
    skip locally and fail in CI, as the other real-data tests do."""
    for path in (REES46, TAOBAO, TAOBAO_USERS):
        _file(str(path.relative_to(REAL)))


def _rees46() -> Iterator[dict[str, Any]]:
    with gzip.open(REES46, "rt", newline="") as f:
        for row in csv.DictReader(f):
            when = datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC")
            yield {
                "event": row["event_type"],
                "ts": when.replace(tzinfo=UTC),
                "user_id": row["user_id"],
                "session_id": row["user_session"],
                "properties": {"brand": row["brand"] or None, "price": float(row["price"])},
            }


def _taobao(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", newline="") as f:
        for user, _item, category, behavior, ts in csv.reader(f):
            yield {
                "event": behavior,
                "ts": datetime.fromtimestamp(int(ts), UTC),
                "user_id": user,
                "properties": {"category": category},
            }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnalyticsStore]:
    where = tmp_path_factory.mktemp("real")
    store = open_analytics(f"duckdb:///{where}/real.duckdb")
    write(store, _rees46(), project_id="rees46")
    write(store, _taobao(TAOBAO), project_id="taobao")
    write(store, _taobao(TAOBAO_USERS), project_id="taobao-users")
    yield store
    store.close()


def _window_funnel(
    where: Path, source: str, key: str, ts: str, kind: str, steps: list[str], w: int
) -> list[int]:
    """ClickHouse's windowFunnel in a chDB session of its own, closed at once (one chDB
    data path per process: never left open beside the service's own stores)."""
    conditions = ", ".join(f"{kind} = '{s}'" for s in steps)
    query = f"""
        SELECT level, count() AS n FROM (
            SELECT {key}, windowFunnel({w})({ts}, {conditions}) AS level
            FROM {source} GROUP BY {key}
        ) GROUP BY level ORDER BY level"""
    session = chdb_session.Session(str(where / "windowfunnel"))
    try:
        text = session.query(query, "CSV").bytes().decode()
    finally:
        session.close()
    per_level = {int(a): int(b) for a, b in (line.split(",") for line in text.split())}
    return [sum(n for lvl, n in per_level.items() if lvl >= k) for k in range(1, len(steps) + 1)]


def _ours(store: AnalyticsStore, project: str, steps: list[str], w: int, **kw: Any) -> list[int]:
    spec = FunnelSpec(
        steps=tuple(EventMatch(s) for s in steps),
        start=datetime(2017, 1, 1, tzinfo=UTC),
        end=datetime(2020, 1, 1, tzinfo=UTC),
        window=timedelta(seconds=w),
        **kw,
    )
    return [s.entered for s in run_funnel(store, project, spec).total.steps]


def _rees46_source() -> str:
    return (
        f"file('{REES46}', 'CSVWithNames', 'event_time String, event_type String, "
        "product_id String, category_id String, category_code String, brand String, "
        "price Float64, user_id String, user_session String')"
    )


def _taobao_source(path: Path) -> str:
    columns = "user_id String, item_id String, category_id String, behavior String, ts Int64"
    return f"file('{path}', 'CSV', '{columns}')"


REES46_TS = "parseDateTimeBestEffort(replaceOne(event_time, ' UTC', ''))"


@pytest.mark.parametrize("window", [60, 600, 3 * 3600])
@pytest.mark.parametrize(
    ("steps", "key", "entity"),
    [
        (["view", "cart", "purchase"], "user_id", FunnelEntity.USER),
        (["view", "purchase"], "user_session", FunnelEntity.SESSION),
        (["cart", "purchase"], "user_id", FunnelEntity.USER),
    ],
)
def test_rees46_ordered_equals_window_funnel(
    store: AnalyticsStore,
    tmp_path: Path,
    steps: list[str],
    key: str,
    entity: FunnelEntity,
    window: int,
) -> None:
    expected = _window_funnel(
        tmp_path, _rees46_source(), key, REES46_TS, "event_type", steps, window
    )
    assert expected[0] > 100  # the case is not empty
    assert expected[-1] > 0
    assert _ours(store, "rees46", steps, window, entity=entity) == expected


@pytest.mark.parametrize("window", [300, 3600, 9 * 86400])
@pytest.mark.parametrize(
    "steps", [["pv", "cart", "buy"], ["pv", "fav", "cart", "buy"], ["cart", "pv", "buy"]]
)
@pytest.mark.parametrize("path", [TAOBAO, TAOBAO_USERS], ids=["slice", "histories"])
def test_taobao_ordered_equals_window_funnel(
    store: AnalyticsStore, tmp_path: Path, steps: list[str], window: int, path: Path
) -> None:
    project = "taobao" if path == TAOBAO else "taobao-users"
    expected = _window_funnel(
        tmp_path, _taobao_source(path), "user_id", "toDateTime(ts)", "behavior", steps, window
    )
    assert expected[0] > 50
    assert _ours(store, project, steps, window) == expected
