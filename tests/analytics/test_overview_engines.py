"""The overview's numbers on DuckDB and ClickHouse (chDB) equal a brute-force Python reading
of their definitions (tests/analytics/reference.py), on generated events and on a real
REES46-derived slice (the demo data)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataintel.analytics.params import AnalyticsParams, Interval, resolve
from dataintel.analytics.service import AnalyticsService
from dataintel.analytics.settings import DeployedSettings
from dataintel.config.declarative.demo_events import demo_events
from dataintel.model.snapshot import AnalyticsSettings
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.eventlog.port import LogEntry
from dataintel.storage.records import StoredEvent, encode
from tests.analytics import reference
from tests.analytics.reference import METRICS, generate, utc

START = utc(2024, 3, 1)
NOW = utc(2024, 4, 1)


def micros(when: datetime) -> int:
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def entries(events: list[dict[str, Any]]) -> list[LogEntry]:
    out = []
    for offset, e in enumerate(events):
        stored: StoredEvent = {
            "project_id": e["project_id"],
            "pipeline_id": "platform",
            "pipeline_version": 1,
            "event_id": e["event_id"],
            "event": e["event"],
            "ts": micros(e["ts"]),
            "received_at": micros(e["ts"]),
            "user_id": e["user_id"],
            "cart_id": e["cart_id"],
            "session_id": None,
            "properties": e["properties"],
        }
        out.append(LogEntry(0, offset, encode(stored)))
    return out


def real_slice() -> list[dict[str, Any]]:
    """The demo data: real REES46 events (views, carts, purchases of real sessions)."""
    out = []
    for e in demo_events(now=utc(2024, 3, 10)):
        out.append(
            {
                "project_id": "real",
                "event_id": e["event_id"],
                "event": e["event"],
                "ts": datetime.fromisoformat(e["timestamp"]),
                "user_id": e["user_id"],
                "cart_id": e["cart_id"],
                "properties": e["properties"],
            }
        )
    return out


GENERATED = generate(7, 4000, START, 28) + generate(8, 600, START, 28, project_id="other")
REAL = real_slice()


@pytest.fixture(scope="module", params=["duckdb", "chdb"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AnalyticsStore]:
    where = tmp_path_factory.mktemp(request.param)
    url = f"duckdb:///{where}/a.duckdb" if request.param == "duckdb" else f"chdb:///{where}/ch"
    opened = open_analytics(url)
    opened.apply(entries(GENERATED + REAL))
    yield opened
    opened.close()


def check(
    store: AnalyticsStore,
    events: list[dict[str, Any]],
    project_id: str,
    params: AnalyticsParams,
    settings: AnalyticsSettings,
) -> dict[str, Any]:
    got = AnalyticsService(store).overview(project_id, params, DeployedSettings(3, settings))
    want = reference.overview(events, project_id, params, settings)
    body = got.model_dump()
    for period, key in ((1, "value"), (0, "previous")):
        for name in METRICS:
            expected = want[("total", period)][name]
            assert body["totals"][name][key] == pytest.approx(expected), (name, period)
    for i, point in enumerate(body["series"]):
        for name in METRICS:
            assert point["metrics"][name]["value"] == pytest.approx(want[(1, i)][name]), (
                name,
                i,
            )
            if point["previous_start"] is not None:
                expected = want[(0, i)][name]
                assert point["metrics"][name]["previous"] == pytest.approx(expected), (name, i)
    abandoned = want[("total", 1)]["carts_abandoned"]
    rate = body["totals"]["recovery_rate"]["value"]
    assert rate == (
        pytest.approx(want[("total", 1)]["carts_recovered"] / abandoned) if abandoned else None
    )
    return body


CASES = [
    (utc(2024, 3, 15), utc(2024, 3, 29), Interval.DAY, []),
    (utc(2024, 3, 20, 6), utc(2024, 3, 21, 18, 30), Interval.HOUR, []),
    (utc(2024, 3, 10, 13, 17), utc(2024, 3, 31), Interval.WEEK, ["properties.price>40"]),
    (utc(2024, 3, 16), utc(2024, 4, 20), Interval.MONTH, ["user_id!=u3"]),
    (utc(2024, 3, 12), utc(2024, 3, 26), Interval.DAY, ["properties.currency=EUR"]),
]


@pytest.mark.parametrize(("start", "end", "interval", "filters"), CASES)
def test_overview_equals_the_brute_force_reference(
    store: AnalyticsStore,
    start: datetime,
    end: datetime,
    interval: Interval,
    filters: list[str],
) -> None:
    params = resolve(start, end, interval, filters, now=NOW)
    body = check(store, GENERATED, "p1", params, AnalyticsSettings())
    totals = body["totals"]
    if not filters:  # the generated data exercise every number
        assert all(totals[name]["value"] for name in METRICS), totals


def test_other_settings_and_an_as_of_inside_the_period(store: AnalyticsStore) -> None:
    settings = AnalyticsSettings(cart_events=["cart_add"], abandon_after="2h", outcome_horizon="1d")
    # 'to' after now: as_of is now (rounded down to the minute), the rest is not counted
    params = resolve(
        utc(2024, 3, 20), utc(2024, 3, 30), Interval.DAY, now=utc(2024, 3, 27, 9, 41, 30)
    )
    assert params.as_of == utc(2024, 3, 27, 9, 41)
    check(store, GENERATED, "p1", params, settings)


def test_a_project_sees_only_its_own_events(store: AnalyticsStore) -> None:
    params = resolve(utc(2024, 3, 1), utc(2024, 3, 29), Interval.WEEK, now=NOW)
    mine = check(store, GENERATED, "other", params, AnalyticsSettings())
    assert 0 < mine["totals"]["events"]["value"] < 1000
    nobody = AnalyticsService(store).overview(
        "nobody", params, DeployedSettings(None, AnalyticsSettings())
    )
    assert nobody.totals.events.value == 0


def test_overview_of_a_real_derived_slice(store: AnalyticsStore) -> None:
    events = REAL
    settings = AnalyticsSettings(abandon_after="5m", outcome_horizon="1h")
    first = min(e["ts"] for e in events)
    last = max(e["ts"] for e in events)
    middle = (first + (last - first) / 2).replace(second=0, microsecond=0)
    params = resolve(middle, last + timedelta(hours=2), Interval.HOUR, now=NOW)
    body = check(store, events, "real", params, settings)
    assert body["totals"]["carts_created"]["value"] > 10
    assert body["totals"]["revenue"]["value"] > 0
