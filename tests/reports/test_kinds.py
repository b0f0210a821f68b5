"""Report kinds and formats below the API: the registry's analysis adapter, several tables
(ZIP of CSV / Parquet files), chart series, and ``event_counts`` giving the same table on
DuckDB and chDB (one SQL through the AnalyticsStore port)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel
from pypdf import PdfReader

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.reports import kinds
from dataintel.reports.data import ChartSpec, RenderMeta, ReportContext, ReportData
from dataintel.reports.event_kinds import EventCountsParams, event_counts_report
from dataintel.reports.formats import ReportFormat, render
from dataintel.reports.pdf import chart_series
from dataintel.storage.analytics.registry import open_analytics
from dataintel.storage.eventlog.port import LogEntry
from dataintel.storage.records import StoredEvent, encode

NOW = datetime(2026, 3, 4, 12, tzinfo=UTC)
META = RenderMeta("rep_x", "overview", "Overview", {"interval": "day"}, NOW)


class Point(BaseModel):
    at: datetime
    events: int
    revenue: float


class Totals(BaseModel):
    events: int
    revenue: float


class Overview(BaseModel):
    totals: Totals
    recovery_rate: float
    series: list[Point]
    channels: list[str]


class OverviewParams(BaseModel):
    days: int = 2


def overview(store: object, project_id: str, params: OverviewParams) -> Overview:
    points = [
        Point(at=NOW + timedelta(days=i), events=10 * (i + 1), revenue=2.5 * i)
        for i in range(params.days)
    ]
    return Overview(
        totals=Totals(events=sum(p.events for p in points), revenue=7.5),
        recovery_rate=0.125,
        series=points,
        channels=["email", "sms"],
    )


def produce(ctx: ReportContext, params: OverviewParams) -> ReportData:
    return kinds.analysis_data("Overview", overview(None, ctx.project_id, params))


def test_an_analysis_answer_becomes_tables_and_charts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kinds, "KINDS", dict(kinds.KINDS))
    kinds.register("fake_overview", OverviewParams, produce)
    kind = kinds.KINDS["fake_overview"]
    assert kind.params is OverviewParams
    ctx = ReportContext("p1", None, None, NOW)  # type: ignore[arg-type]
    data = kind.run(ctx, {"days": 3})
    assert data.title == "Overview"
    assert list(data.tables) == ["summary", "series"]
    assert data.tables["summary"].to_pylist() == [
        {
            "totals.events": 60,
            "totals.revenue": 7.5,
            "recovery_rate": 0.125,
            "channels": '["email","sms"]',
        }
    ]
    assert data.tables["series"].column("events").to_pylist() == [10, 20, 30]
    assert [(c.kind, c.table, c.x, c.y) for c in data.charts] == [
        ("line", "series", "at", "events"),
        ("line", "series", "at", "revenue"),
    ]
    with pytest.raises(ValueError, match="already registered"):
        kinds.register("fake_overview", OverviewParams, produce)
    assert {"overview", "conversion", "revenue", "performance"} <= set(kinds.kind_names())


def _two_tables() -> ReportData:
    answer = overview(None, "p1", OverviewParams(days=2))
    return kinds.analysis_data("Overview", answer)


def test_several_tables_are_a_zip_of_one_file_per_table() -> None:
    data = _two_tables()
    as_csv = render(data, META, ReportFormat.CSV)
    assert (as_csv.media_type, as_csv.extension) == ("application/zip", "csv.zip")
    with zipfile.ZipFile(io.BytesIO(as_csv.body)) as archive:
        assert archive.namelist() == ["summary.csv", "series.csv"]
        series = list(csv.DictReader(io.StringIO(archive.read("series.csv").decode())))
    assert series == [
        {"at": "2026-03-04T12:00:00Z", "events": "10", "revenue": "0"},
        {"at": "2026-03-05T12:00:00Z", "events": "20", "revenue": "2.5"},
    ]
    as_parquet = render(data, META, ReportFormat.PARQUET)
    with zipfile.ZipFile(io.BytesIO(as_parquet.body)) as archive:
        table = pq.read_table(io.BytesIO(archive.read("series.parquet")))
    assert table.equals(data.tables["series"])
    as_json = orjson.loads(render(data, META, ReportFormat.JSON).body)
    assert as_json["report"]["generated_at"] == "2026-03-04T12:00:00Z"
    assert as_json["tables"]["series"][1] == {
        "at": "2026-03-05T12:00:00Z",
        "events": 20,
        "revenue": 2.5,
    }
    pdf = render(data, META, ReportFormat.PDF)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.body)).pages)
    for shown in ("Overview", "recovery_rate", "0.125", "totals.events", "30", "2.5"):
        assert shown in text


def test_chart_series_keep_the_largest_and_sum_the_rest() -> None:
    names = [f"e{i}" for i in range(10)]
    table = pa.table(
        {
            "day": [date(2026, 1, 1 + d) for d in range(2) for _ in names],
            "event": names * 2,
            "n": [(i + 1) * (d + 1) for d in range(2) for i in range(10)],
        }
    )
    labels, series, values = chart_series(ChartSpec("bar", "t", "day", "n", "event"), table)
    assert labels == ["2026-01-01", "2026-01-02"]
    assert series == ["e9", "e8", "e7", "e6", "e5", "e4", "e3", "other"]
    assert values[0] == [10.0, 20.0]
    assert values[-1] == [1 + 2 + 3.0, 2 * (1 + 2 + 3.0)]
    assert sum(map(sum, values)) == sum(table.column("n").to_pylist())


def test_a_chart_must_name_real_columns() -> None:
    with pytest.raises(ValueError, match="no column 'y'"):
        ReportData("t", {"t": pa.table({"x": [1]})}, (ChartSpec("bar", "t", "x", "y"),))
    with pytest.raises(ValueError, match="at least one table"):
        ReportData("t", {})


def _entry(offset: int, event: str, when: datetime, project: str = "p1") -> LogEntry:
    body: StoredEvent = {
        "project_id": project,
        "pipeline_id": "web",
        "pipeline_version": 1,
        "event_id": f"e{offset}",
        "event": event,
        "ts": int(when.timestamp() * 1_000_000),
        "received_at": int(when.timestamp() * 1_000_000),
        "user_id": "u1",
        "cart_id": None,
        "session_id": None,
        "properties": {},
    }
    return LogEntry(0, offset, encode(body))


@pytest.mark.parametrize("engine", ["duckdb", "chdb"])
def test_event_counts_on_both_analytics_engines(engine: str, tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, 6, tzinfo=UTC)  # a partial first day
    entries = [
        _entry(i, ("view", "cart")[i % 2], start + timedelta(hours=5 * i)) for i in range(20)
    ]
    entries.append(_entry(99, "view", start, project="p2"))  # another tenant's
    url = f"duckdb:///{tmp_path}/a.duckdb" if engine == "duckdb" else f"chdb:///{tmp_path}/ch"
    store = open_analytics(url)
    try:
        store.apply(entries)
        ctx = ReportContext("p1", store, ActiveConfigCache.__new__(ActiveConfigCache), NOW)
        end = start + timedelta(days=4)
        params = EventCountsParams(start=start, end=end)
        data = event_counts_report(ctx, params)
        only = event_counts_report(ctx, EventCountsParams(start=start, end=end, events=["x"]))
    finally:
        store.close()
    want: dict[tuple[date, str], int] = {}
    for i in range(20):
        when = start + timedelta(hours=5 * i)
        want[(when.date(), ("view", "cart")[i % 2])] = (
            want.get((when.date(), ("view", "cart")[i % 2]), 0) + 1
        )
    got = {(r["day"], r["event"]): r["events"] for r in data.tables["daily"].to_pylist()}
    days = [date(2026, 1, 1 + d) for d in range(5)]  # [06:00 on the 1st, 06:00 on the 5th)
    assert got == {(d, n): want.get((d, n), 0) for d in days for n in ("cart", "view")}
    assert only.tables["daily"].to_pylist() == [{"day": d, "event": "x", "events": 0} for d in days]
