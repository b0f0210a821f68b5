"""Batch feature values on the real REES46 slice, on DuckDB and on chDB, against pandas.

Each feature is computed by the service's one query (``features.batch.compute``) and by a
pandas computation written here from the definition of a batch value: the events of the
window ``[floor((t - W) / g) * g, t]`` received by t, grouped by the entity key (events
without it are left out)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from tests.analytics.store_writer import micros, write
from tests.features.batch_data import PIPELINE_YAML, REES46, rees46_frame, rees46_rows
from tests.ingest.test_real_data import _file

from dataintel.features.batch.compute import compute
from dataintel.model.batch import BatchFeatureSpec
from dataintel.model.snapshot import ConfigSnapshot, PipelineSpec
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics

T = datetime(2019, 10, 1, 2, 40, tzinfo=UTC)


@pytest.fixture(scope="module", params=["duckdb", "chdb"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AnalyticsStore]:
    _file(str(REES46.relative_to(REES46.parents[1])))
    base: Path = tmp_path_factory.mktemp(request.param)
    url = f"duckdb:///{base / 'a.duckdb'}" if request.param == "duckdb" else f"chdb:///{base}"
    opened = open_analytics(url)
    write(opened, rees46_rows(), project_id="shop")
    write(
        opened,
        [
            {
                "event": "view",
                "ts": T,
                "user_id": "u-other",
                "properties": {"brand": "apple", "category_code": "x"},
            }
        ],
        project_id="other",
    )
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return rees46_frame()


def pipelines() -> list[PipelineSpec]:
    return ConfigSnapshot.model_validate(yaml.safe_load(PIPELINE_YAML)).pipelines


def window(frame: pd.DataFrame, seconds: int, g: int, t: datetime = T) -> pd.DataFrame:
    t_us = micros(t)
    start_us = ((t_us - seconds * 1_000_000) // (g * 1_000_000)) * g * 1_000_000
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=start_us)
    return frame[(frame.ts >= start) & (frame.ts <= t)]


def upto(frame: pd.DataFrame) -> pd.DataFrame:
    """The events of a window of days at T (they all lie within it): those up to T."""
    return frame[frame.ts <= T]


def run(store: AnalyticsStore, **definition: Any) -> dict[str, Any]:
    spec = BatchFeatureSpec(name="f", **definition)
    return compute(store, spec, pipelines(), "shop", micros(T))


def same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(value, rel=1e-9), key


def test_category_popularity_counts_views_per_category(
    store: AnalyticsStore, frame: pd.DataFrame
) -> None:
    got = run(
        store,
        pipeline_id="web",
        source_event="view",
        entity_key="category_code",
        aggregation="COUNT",
        window="30d",
    )
    views = upto(frame)
    views = views[(views.event == "view") & views.category_code.notna()]
    want = views.groupby("category_code").size().to_dict()
    assert len(want) > 50
    assert got == {k: int(v) for k, v in want.items()}


def test_a_short_window_reads_only_its_events(store: AnalyticsStore, frame: pd.DataFrame) -> None:
    # 1h: g(W) = 1 s, so the window is exactly [t - 1h, t]
    got = run(
        store,
        pipeline_id="web",
        source_event="view",
        entity_key="brand",
        aggregation="SUM",
        field="price",
        window="1h",
    )
    views = window(frame, 3600, 1)
    views = views[(views.event == "view") & views.brand.notna()]
    same(got, views.groupby("brand").price.sum().to_dict())
    everything = run(
        store,
        pipeline_id="web",
        source_event="view",
        entity_key="brand",
        aggregation="SUM",
        field="price",
        window="30d",
    )
    assert sum(everything.values()) > sum(got.values())


@pytest.mark.parametrize("aggregation", ["AVG", "MIN", "MAX"])
def test_price_statistics_per_brand(
    store: AnalyticsStore, frame: pd.DataFrame, aggregation: str
) -> None:
    got = run(
        store,
        pipeline_id="web",
        source_event="view",
        entity_key="brand",
        aggregation=aggregation,
        field="price",
        window="2h",
    )
    views = window(frame, 7200, 1)
    views = views[(views.event == "view") & views.brand.notna()]
    same(
        got,
        views.groupby("brand")
        .price.agg({"AVG": "mean", "MIN": "min", "MAX": "max"}[aggregation])
        .to_dict(),
    )


def test_distinct_users_per_category(store: AnalyticsStore, frame: pd.DataFrame) -> None:
    got = run(
        store,
        pipeline_id="web",
        source_event="view",
        entity_key="category_code",
        aggregation="COUNT_DISTINCT",
        field="user_id",
        window="30d",
    )
    views = upto(frame)
    views = views[(views.event == "view") & views.category_code.notna()]
    assert got == {k: int(v) for k, v in views.groupby("category_code").user_id.nunique().items()}


def test_purchase_frequency_per_user(store: AnalyticsStore, frame: pd.DataFrame) -> None:
    got = run(store, pipeline_id="web", source_event="purchase", aggregation="COUNT", window="7d")
    buys = upto(frame)
    buys = buys[buys.event == "purchase"]
    assert got == {k: int(v) for k, v in buys.groupby("user_id").size().items()}


def test_brand_conversion_rate_by_expression(store: AnalyticsStore, frame: pd.DataFrame) -> None:
    got = run(
        store,
        entity_key="brand",
        expression="count_if(event = 'purchase') / nullif(count_if(event = 'view'), 0)",
        window="30d",
    )
    with_brand = upto(frame)
    with_brand = with_brand[with_brand.brand.notna()]
    views = with_brand[with_brand.event == "view"].groupby("brand").size()
    buys = with_brand[with_brand.event == "purchase"].groupby("brand").size()
    want = {
        b: (float(buys.get(b, 0)) / views[b] if views.get(b, 0) else None)
        for b in with_brand.brand.unique()
    }
    assert sum(1 for v in want.values() if v) > 10
    same(got, want)


def test_an_expression_reads_numbers_as_numbers(store: AnalyticsStore, frame: pd.DataFrame) -> None:
    got = run(
        store,
        entity_key="category_code",
        expression="sum(CASE WHEN event = 'purchase' THEN price ELSE 0 END) "
        "/ count(DISTINCT user_id)",
        window="30d",
    )
    rows = upto(frame)
    rows = rows[rows.category_code.notna()]
    revenue = (
        rows.assign(r=rows.price.where(rows.event == "purchase", 0.0))
        .groupby("category_code")
        .r.sum()
    )
    users = rows.groupby("category_code").user_id.nunique()
    same(got, (revenue / users).to_dict())


def test_events_received_after_t_are_not_read(store: AnalyticsStore, frame: pd.DataFrame) -> None:
    early = T - timedelta(minutes=30)
    spec = BatchFeatureSpec(
        name="f",
        pipeline_id="web",
        source_event="view",
        aggregation="COUNT",
        entity_key="category_code",
        window="30d",
    )
    got = compute(store, spec, pipelines(), "shop", micros(early))
    views = frame[(frame.event == "view") & frame.category_code.notna() & (frame.ts <= early)]
    assert got == {k: int(v) for k, v in views.groupby("category_code").size().items()}


def test_another_project_is_never_read(store: AnalyticsStore) -> None:
    got = run(store, entity_key="brand", expression="count(*)", window="30d")
    assert "apple" in got
    other = compute(
        store,
        BatchFeatureSpec(name="f", entity_key="brand", expression="count(*)"),
        pipelines(),
        "other",
        micros(T),
    )
    assert other == {"apple": 1}
    assert got["apple"] > 1


def test_an_expression_may_read_one_event_over_a_lifetime(
    store: AnalyticsStore, frame: pd.DataFrame
) -> None:
    got = run(
        store,
        entity_key="brand",
        pipeline_id="web",
        source_event="cart",
        expression="count(*) + 0 * max(price)",
        window="lifetime",
    )
    carts = upto(frame)
    carts = carts[(carts.event == "cart") & carts.brand.notna()]
    assert got == {k: int(v) for k, v in carts.groupby("brand").size().items()}
