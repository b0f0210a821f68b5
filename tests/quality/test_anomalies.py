"""Anomaly detection acceptance on real data: the Taobao 9-day histories of ~114 users
(UserBehavior_last10000rows…, SOURCE.md) replayed at their own event times into the
analytics store (DuckDB and chDB). Taobao has no prices: a purchase's revenue is derived
from its item id, deterministically: 1 + (item_id mod 997) / 10.

The shop is small (≈1,000 views a day, a purchase an hour), so its hours are Poisson
noise; it judges 24-hour buckets without seasonality (``bucket_hours: 24``, ``seasonality:
none``, warm-up 5 days as Bigeye's) and, with so few baseline days that the MAD of five
points is often 1 or 2 events, a minimum band of 15 % of the median (``min_band_ratio``).
The real days judged after the warm-up (Nov 30, Dec 1) raise no alert; a volume outage,
a revenue spike and a broken field injected into Dec 1 each raise one at the first run
after that day. (Dec 2, the data's last complete day, is a genuine surge: views +67 % and
purchases +80 % over the week's median, ahead of the Double 12 sale; it is not used.)
"""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dataintel.api.state import ANALYTICS
from dataintel.config.deployments.active import CONFIGS
from dataintel.quality.anomalies import AnomalyDetector
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.metadata.monitoring_models import MetricEvaluation, QualityAlert
from tests.analytics.store_writer import write
from tests.conftest import IN_CI, Keys, apply_yaml

DATA = Path(os.environ.get("DATAINTEL_REAL_DATA", "/tmp/shared/data/real"))
TAOBAO = DATA / "taobao-userbehavior/UserBehavior_last10000rows_users_999477-999999.csv.gz"
NAMES = {"pv": "view", "cart": "cart_add", "fav": "favorite", "buy": "purchase"}
FIRST, LAST = datetime(2017, 11, 25, tzinfo=UTC), datetime(2017, 12, 3, tzinfo=UTC)
DAY = timedelta(days=1)
EVENTS = "[{name: view, fields: [{name: item_id, type: string}, {name: category_id, type: string}]}, {name: cart_add}, {name: favorite}, {name: purchase, fields: [{name: revenue, type: number}]}]"  # noqa: E501


def project_yaml(project: str) -> str:
    return (
        f"project: {{id: {project}, name: Shop}}\n"
        f"pipelines: [{{id: web, name: Web, events: {EVENTS}}}]\n"
        "monitoring: {anomalies: {bucket_hours: 24, seasonality: none, warmup: 5, "
        "min_band_ratio: 0.15}}\n"
    )


def taobao() -> list[dict[str, Any]]:
    """The complete UTC days of the history as events (revenue derived from the item id)."""
    if not TAOBAO.exists():
        if IN_CI:
            pytest.fail(f"real data not found: {TAOBAO} (CI=true: the real data is mandatory)")
        pytest.skip(f"real data not found: {TAOBAO}")
    rows = []
    with gzip.open(TAOBAO, "rt") as f:
        for user, item, category, behavior, ts in csv.reader(f):
            moment = datetime.fromtimestamp(int(ts), UTC)
            if not FIRST <= moment < LAST:
                continue
            properties: dict[str, Any] = {"item_id": item, "category_id": category}
            if behavior == "buy":
                properties = {"revenue": 1 + (int(item) % 997) / 10}
            rows.append(
                {"event": NAMES[behavior], "ts": moment, "user_id": user, "properties": properties}
            )
    return rows


BROKEN = LAST - 2 * DAY  # Dec 1, judged by the run at Dec 2 00:00 UTC


def broken_day(row: dict[str, Any]) -> bool:
    return bool(BROKEN <= row["ts"] < BROKEN + DAY)


def drop_volume(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Views are not tracked for a whole day (an outage of the page-view tag)."""
    return [r for r in rows if not (r["event"] == "view" and broken_day(r))]


def spike_revenue(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A price bug for a day: revenue sent in cents."""
    return [
        {**r, "properties": {"revenue": r["properties"]["revenue"] * 100}}
        if r["event"] == "purchase" and broken_day(r)
        else r
        for r in rows
    ]


def break_field(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """From noon of the broken day on, views come without item_id."""
    cut = BROKEN + timedelta(hours=12)
    return [
        {**r, "properties": {"category_id": r["properties"]["category_id"]}}
        if r["event"] == "view" and r["ts"] >= cut
        else r
        for r in rows
    ]


@pytest.fixture(params=["duckdb", "chdb"])
def store(request: pytest.FixtureRequest, app: Any, tmp_path: Path) -> Iterator[AnalyticsStore]:
    if request.param == "duckdb":
        yield app.state.dataintel.port(ANALYTICS)
        return
    chdb = open_analytics(f"chdb:{tmp_path}/chdb")
    yield chdb
    chdb.close()


def setup(app: Any, keys: Keys, store: AnalyticsStore, project: str, rows: list[Any]) -> Any:
    keys.project(project)
    apply_yaml(app, project_yaml(project))
    write(store, rows, project)
    configs = app.state.dataintel.port(CONFIGS)
    configs.invalidate()
    return AnomalyDetector(app.state.dataintel.sessions, store, lambda p: configs.get(p).snapshot)


def alerts_of(app: Any, project: str) -> list[QualityAlert]:
    with app.state.dataintel.sessions() as session:
        query = select(QualityAlert).where(QualityAlert.project_id == project)
        return list(session.scalars(query))


def test_the_real_history_raises_no_alert(
    app: Any, client: TestClient, keys: Keys, store: AnalyticsStore
) -> None:
    rows = taobao()
    detector = setup(app, keys, store, "shop", rows)
    outcomes = [detector.run("shop", LAST - k * DAY) for k in (2, 1)]
    assert [o["anomalies"] for o in outcomes] == [[], []]
    assert all(o["metrics"].get("ok", 0) >= 3 for o in outcomes), outcomes  # really judged
    assert alerts_of(app, "shop") == []
    # the stored series is the events' own count (pandas, independently)
    frame = pd.DataFrame(rows)
    views = frame[(frame.event == "view") & (frame.ts >= BROKEN) & (frame.ts < BROKEN + DAY)]
    with app.state.dataintel.sessions() as session:
        found = session.get(MetricEvaluation, ("shop", "volume:view", BROKEN))
        assert found is not None
        assert found.value == len(views)
        assert found.status == "ok"


@pytest.mark.parametrize(
    ("inject", "metric"),
    [
        (drop_volume, "volume:view"),
        (spike_revenue, "revenue"),
        (break_field, "null_rate:view.item_id"),
    ],
)
def test_an_injected_incident_alerts_at_the_first_run_after_it(
    app: Any,
    client: TestClient,
    keys: Keys,
    store: AnalyticsStore,
    inject: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    metric: str,
) -> None:
    detector = setup(app, keys, store, "shop", inject(taobao()))
    assert detector.run("shop", BROKEN)["anomalies"] == []  # the day before: quiet
    outcome = detector.run("shop", BROKEN + DAY)  # the first run after the broken day
    assert metric in outcome["anomalies"], outcome
    found = {a.fingerprint: a for a in alerts_of(app, "shop")}
    alert = found[f"anomaly:{metric}"]
    assert alert.status == "open"
    assert alert.kind == "anomaly"
    assert abs(alert.detail["score"]) > 3.5
    again = detector.run("shop", BROKEN + DAY)  # the same slot again: the same single alert
    assert again["anomalies"] == outcome["anomalies"]
    assert len(alerts_of(app, "shop")) == len(found)
