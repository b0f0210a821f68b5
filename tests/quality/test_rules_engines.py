"""Every rule type on the real REES46 and Taobao slices, on DuckDB and ClickHouse (chDB),
equals a reference computed directly with pandas from the CSV files (observed value and pass
fraction). Both slices live in one store under two projects: each project's numbers equal
the reference of its own slice only (tenant isolation by construction)."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from dataintel.model.quality import QualityConfig
from dataintel.model.snapshot import ConfigSnapshot
from dataintel.quality.rules_run import Outcome, RuleRunner
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from tests.analytics.store_writer import write
from tests.ingest.test_real_data import REAL, _file

REES46 = REAL / "rees46-multicategory/2019-Oct_head_20191001T0000-0250Z.csv.gz"
TAOBAO = REAL / "taobao-userbehavior/UserBehavior_last10000rows_users_999477-999999.csv.gz"
SNAPSHOT = ConfigSnapshot.model_validate(
    {
        "pipelines": [
            {
                "id": "web",
                "name": "Web",
                "events": [
                    {"name": "view", "fields": [{"name": "price", "type": "number"}]},
                ],
            }
        ]
    }
)
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BRANDS = ["samsung", "apple", "xiaomi", "huawei"]


@pytest.fixture(scope="module")
def rees46() -> pd.DataFrame:
    _file(str(REES46.relative_to(REAL)))
    frame = pd.read_csv(REES46, dtype=str, keep_default_na=False)
    frame["ts"] = pd.to_datetime(frame["event_time"].str.replace(" UTC", ""), utc=True)
    frame["price"] = frame["price"].astype(float)
    return frame


@pytest.fixture(scope="module")
def taobao() -> pd.DataFrame:
    _file(str(TAOBAO.relative_to(REAL)))
    names = ["user_id", "item_id", "category_id", "behavior", "t"]
    frame = pd.read_csv(TAOBAO, header=None, names=names, dtype=str)
    frame["ts"] = pd.to_datetime(frame["t"].astype(int), unit="s", utc=True)
    return frame


def _rees46_rows() -> Iterator[dict[str, Any]]:
    with gzip.open(REES46, "rt", newline="") as f:
        for row in csv.DictReader(f):
            when = datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC")
            yield {
                "event": row["event_type"],
                "ts": when.replace(tzinfo=UTC),
                "user_id": row["user_id"],
                "session_id": row["user_session"] or None,
                "properties": {
                    "brand": row["brand"] or None,
                    "category_code": row["category_code"] or None,
                    "price": float(row["price"]),
                    "product_id": row["product_id"],
                },
            }


def _taobao_rows() -> Iterator[dict[str, Any]]:
    with gzip.open(TAOBAO, "rt", newline="") as f:
        for user, item, category, behavior, ts in csv.reader(f):
            yield {
                "event": behavior,
                "ts": datetime.fromtimestamp(int(ts), UTC),
                "user_id": user,
                "properties": {"item": item, "category": category},
            }


@pytest.fixture(scope="module", params=["duckdb", "chdb"])
def store(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    rees46: Any,
    taobao: Any,
) -> Iterator[AnalyticsStore]:
    where = tmp_path_factory.mktemp(request.param)
    url = f"duckdb:///{where}/a.duckdb" if request.param == "duckdb" else f"chdb:///{where}/ch"
    store = open_analytics(url)
    write(store, _rees46_rows(), project_id="rees46")
    write(store, _taobao_rows(), project_id="taobao")
    yield store
    store.close()


def _run(
    store: AnalyticsStore,
    project: str,
    rules: list[dict[str, Any]],
    start: datetime,
    end: datetime,
    dead: int = 0,
) -> dict[str, Outcome]:
    config = QualityConfig.model_validate({"rules": rules})
    runner = RuleRunner(store, project, SNAPSHOT, lambda _data: dead)
    return {o.rule.name: o for o in runner.run(config.rules, start, end)}


def _row_level(outcome: Outcome, passing: int, total: int) -> None:
    assert outcome.status != "error", outcome.detail
    assert (outcome.passing, outcome.total) == (passing, total)
    assert outcome.pass_fraction == pytest.approx(passing / total)
    assert outcome.observed == pytest.approx(100 * (total - passing) / total)


START = datetime(2019, 10, 1, tzinfo=UTC)
END = datetime(2019, 10, 1, 3, tzinfo=UTC)


def test_rees46_row_level_rules_equal_pandas(store: AnalyticsStore, rees46: pd.DataFrame) -> None:
    rules = [
        {"name": "brand", "type": "missing", "dataset": "view", "column": "properties.brand"},
        {"name": "cat", "type": "missing", "column": "properties.category_code", "mostly": 0.5},
        {"name": "dup", "type": "duplicate", "dataset": "purchase", "column": "session_id"},
        {
            "name": "price",
            "type": "range",
            "dataset": "view",
            "column": "properties.price",
            "min": 1,
            "max": 1000,
            "mostly": 0.9,
        },
        {
            "name": "brands",
            "type": "accepted_values",
            "column": "properties.brand",
            "values": BRANDS,
        },
        {"name": "uuid", "type": "regex", "column": "session_id", "pattern": UUID},
        {
            "name": "code",
            "type": "regex",
            "column": "properties.category_code",
            "pattern": r"[a-z_]+(\.[a-z_]+)*",
        },
        {
            "name": "sql",
            "type": "custom_sql",
            "dataset": "view",
            "predicate": "properties.price > 100 AND properties.brand IS NOT NULL",
        },
        {
            "name": "ref",
            "type": "referential",
            "dataset": "purchase",
            "column": "session_id",
            "parent_event": "cart",
        },
    ]
    got = _run(store, "rees46", rules, START, END)
    views = rees46[rees46.event_type == "view"]
    _row_level(got["brand"], int((views.brand != "").sum()), len(views))
    _row_level(got["cat"], int((rees46.category_code != "").sum()), len(rees46))
    assert got["cat"].status == ("pass" if got["cat"].pass_fraction >= 0.5 else "fail")
    purchases = rees46[rees46.event_type == "purchase"]
    _row_level(got["dup"], purchases.user_session.nunique(), len(purchases))
    in_range = views.price.between(1, 1000)
    _row_level(got["price"], int(in_range.sum()), len(views))
    assert got["price"].status == ("pass" if in_range.mean() >= 0.9 else "fail")
    branded = rees46[rees46.brand != ""]
    _row_level(got["brands"], int(branded.brand.isin(BRANDS).sum()), len(branded))
    _row_level(got["uuid"], int(rees46.user_session.str.fullmatch(UUID).sum()), len(rees46))
    coded = rees46[rees46.category_code != ""]
    matches = coded.category_code.str.fullmatch(r"[a-z_]+(\.[a-z_]+)*")
    _row_level(got["code"], int(matches.sum()), len(coded))
    _row_level(got["sql"], int(((views.price > 100) & (views.brand != "")).sum()), len(views))
    carts = rees46[rees46.event_type == "cart"].groupby("user_session").ts.min()
    first_cart = purchases.user_session.map(carts)
    _row_level(got["ref"], int((first_cart <= purchases.ts).sum()), len(purchases))
    assert got["ref"].status == "fail"  # REES46's known quirk: purchases without a cart


def test_rees46_freshness_volume_and_schema(store: AnalyticsStore, rees46: pd.DataFrame) -> None:
    end = datetime(2019, 10, 1, 2, 55, tzinfo=UTC)
    rules = [
        {"name": "fresh", "type": "freshness", "max_age_seconds": 600},
        {"name": "stale", "type": "freshness", "dataset": "cart", "max_age_seconds": 60},
        {"name": "vol", "type": "volume", "interval_seconds": 600, "min": 100, "max": 5000},
        {"name": "schema", "type": "schema", "dataset": "view"},
    ]
    got = _run(store, "rees46", rules, START, end, dead=250)
    newest = rees46.ts.max()
    assert got["fresh"].observed == pytest.approx((end - newest).total_seconds())
    assert got["fresh"].status == "pass"
    cart_age = (end - rees46[rees46.event_type == "cart"].ts.max()).total_seconds()
    assert got["stale"].observed == pytest.approx(cart_age)
    assert got["stale"].status == ("pass" if cart_age <= 60 else "fail")
    # 10-minute intervals, complete inside [00:00, 02:55): 00:00 .. 02:50 -> 17 intervals
    buckets = (rees46.ts - START) // timedelta(seconds=600)
    counts = buckets[buckets < 17].value_counts().reindex(range(17), fill_value=0)
    ok = int(counts.between(100, 5000).sum())
    _row_level(got["vol"], ok, 17)
    assert got["vol"].detail["min_count"] == counts.min()
    assert got["vol"].detail["max_count"] == counts.max()
    views = int((rees46.event_type == "view").sum())  # received_at = event time here
    _row_level(got["schema"], views, views + 250)


def test_taobao_rules_equal_pandas(store: AnalyticsStore, taobao: pd.DataFrame) -> None:
    start, end = taobao.ts.min().to_pydatetime(), taobao.ts.max().to_pydatetime()
    end += timedelta(seconds=1)
    rules = [
        {"name": "kinds", "type": "accepted_values", "column": "event", "values": ["pv", "buy"]},
        {"name": "buyers", "type": "duplicate", "dataset": "buy", "column": "user_id"},
        {
            "name": "ref",
            "type": "referential",
            "dataset": "buy",
            "column": "user_id",
            "parent_event": "cart",
            "mostly": 0.1,
        },
        {"name": "vol", "type": "volume", "interval_seconds": 86_400, "min": 900},
        {"name": "item", "type": "missing", "column": "properties.item"},
    ]
    got = _run(store, "taobao", rules, start, end)
    _row_level(got["kinds"], int(taobao.behavior.isin(["pv", "buy"]).sum()), len(taobao))
    buys = taobao[taobao.behavior == "buy"]
    _row_level(got["buyers"], buys.user_id.nunique(), len(buys))
    carts = taobao[taobao.behavior == "cart"].groupby("user_id").ts.min()
    _row_level(got["ref"], int((buys.user_id.map(carts) <= buys.ts).sum()), len(buys))
    epoch = pd.Timestamp(0, tz="UTC")
    day = pd.Timedelta(days=1)
    first = epoch + -(-(pd.Timestamp(start) - epoch) // day) * day
    last = epoch + ((pd.Timestamp(end) - epoch) // day) * day
    n = (last - first) // day
    inside = taobao[(taobao.ts >= first) & (taobao.ts < last)]
    counts = ((inside.ts - first) // day).value_counts().reindex(range(n), fill_value=0)
    _row_level(got["vol"], int((counts >= 900).sum()), n)
    _row_level(got["item"], len(taobao), len(taobao))
    assert got["item"].status == "pass"


def test_a_window_without_rows_passes_without_a_fraction(store: AnalyticsStore) -> None:
    rules = [
        {"name": "m", "type": "missing", "column": "user_id"},
        {"name": "f", "type": "freshness", "max_age_seconds": 60},
    ]
    got = _run(
        store, "rees46", rules, datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 2, tzinfo=UTC)
    )
    assert (got["m"].status, got["m"].pass_fraction, got["m"].total) == ("pass", None, 0)
    assert (got["f"].status, got["f"].observed) == ("fail", None)


def test_a_project_sees_only_its_own_events(store: AnalyticsStore, taobao: pd.DataFrame) -> None:
    """The REES46 project's rules over the Taobao slice's time count nothing of Taobao's."""
    start, end = taobao.ts.min().to_pydatetime(), taobao.ts.max().to_pydatetime()
    rules = [
        {"name": "all", "type": "missing", "column": "user_id"},
        {"name": "sql", "type": "custom_sql", "predicate": "user_id IS NOT NULL"},
    ]
    got = _run(store, "rees46", rules, start, end + timedelta(seconds=1))
    assert got["all"].total == 0
    assert got["sql"].total == 0
    mine = _run(store, "taobao", rules, start, end + timedelta(seconds=1))
    assert mine["all"].total == len(taobao) == mine["sql"].passing
