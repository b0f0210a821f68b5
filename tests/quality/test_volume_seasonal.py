"""The volume rule against its seasonal baseline, on real Taobao behaviour: its first week
of events replayed for three weeks (the weekly rhythm of the real shop), checked day by day
against the same weekday of the two weeks before. The replayed week passes every day; with
one day's events dropped in the checked week, exactly that day fails, with the modified z
of a brute-force median/MAD computed here. On DuckDB and chDB."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataintel.model.quality import QualityConfig
from dataintel.quality.rules_run import RuleRunner
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from tests.analytics.store_writer import write
from tests.quality.test_rules_engines import SNAPSHOT, _taobao_rows

WEEK = timedelta(days=7)
DAY = timedelta(days=1)
FIRST = datetime(2017, 11, 25, tzinfo=UTC)  # the slice's first whole day
DROPPED = FIRST + 2 * WEEK + 3 * DAY  # a day of the checked (third) week
RULE = {
    "name": "daily_volume",
    "type": "volume",
    "dataset": "pv",
    "interval_seconds": 86_400,
    "baseline": "seasonal",
    "baseline_weeks": 2,
}


def _weeks(drop: datetime | None) -> Iterator[dict[str, Any]]:
    """The real first week, then two copies shifted by one and two weeks."""
    week = [r for r in _taobao_rows() if FIRST <= r["ts"] < FIRST + WEEK]
    for copy in range(3):
        for row in week:
            ts = row["ts"] + copy * WEEK
            if drop is not None and drop <= ts < drop + DAY:
                continue
            yield {**row, "ts": ts}


@pytest.fixture(scope="module", params=["duckdb", "chdb"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    where = tmp_path_factory.mktemp(f"volume-{request.param}")
    url = f"duckdb:///{where}/a.duckdb" if request.param == "duckdb" else f"chdb:///{where}/ch"
    found = open_analytics(url)
    write(found, _weeks(None), project_id="steady")
    write(found, _weeks(DROPPED), project_id="outage")
    yield found
    found.close()


def run(store: AnalyticsStore, project: str) -> Any:
    config = QualityConfig.model_validate({"rules": [RULE]})
    runner = RuleRunner(store, project, SNAPSHOT, lambda _data: 0)
    start = FIRST + 2 * WEEK
    (outcome,) = runner.run(config.rules, start, start + WEEK)
    return outcome


def test_the_real_weekly_rhythm_passes_every_day(store: AnalyticsStore) -> None:
    outcome = run(store, "steady")
    assert outcome.status == "pass", outcome.detail
    assert (outcome.passing, outcome.total) == (7, 7)


def test_a_dropped_day_fails_with_the_brute_force_score(store: AnalyticsStore) -> None:
    outcome = run(store, "outage")
    assert outcome.status == "fail", outcome.detail
    assert (outcome.passing, outcome.total) == (6, 7)
    (listed,) = outcome.detail["out_of_bounds"]
    assert listed["start"] == DROPPED.isoformat()
    assert listed["count"] == 0
    real = DROPPED - 2 * WEEK  # the same weekday of the two weeks before: this real day, twice
    count = sum(1 for r in _taobao_rows() if r["event"] == "pv" and real <= r["ts"] < real + DAY)
    per_day = [count, count]
    median = statistics.median(per_day)
    mad = statistics.median(abs(v - median) for v in per_day)
    spread = max(mad, 0.1 * median, 1.0)
    assert listed["z"] == pytest.approx(round(0.6745 * (0 - median) / spread, 3))
