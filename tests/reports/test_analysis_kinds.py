"""Reports of the analyses: the file holds the answer the analysis route gives for the same
parameters; a bad parameter is a 422 naming it when the report is requested."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import assert_problem
from tests.reports.conftest import DAYS, TODAY, Reports

PERIOD = {"from": DAYS[0].isoformat(), "to": TODAY.isoformat()}


def report_tables(reports: Reports, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    done = reports.file({"kind": kind, "params": params, "format": "json"})
    body = done.json()
    assert body["report"]["kind"] == kind
    return body["tables"]  # type: ignore[no-any-return]


def test_an_overview_report_is_the_overview(reports: Reports) -> None:
    params = {**PERIOD, "interval": "day"}
    api = reports.client.get("/v1/analytics/overview", params=params, headers=reports.headers)
    assert api.status_code == 200, api.text
    tables = report_tables(reports, "overview", params)
    [summary] = tables["summary"]
    for metric, numbers in api.json()["totals"].items():
        assert summary[f"totals.{metric}.value"] == numbers["value"], metric
    series = tables["series"]
    assert [p["metrics.events.value"] for p in series] == [
        p["metrics"]["events"]["value"] for p in api.json()["series"]
    ]
    assert sum(p["metrics.events.value"] for p in series) == len(reports.events)


def test_a_conversion_report_is_the_funnel(reports: Reports) -> None:
    params = {**PERIOD, "steps": ["cart_add", "purchase"], "window": "1d"}
    query = {**PERIOD, "step": params["steps"], "window": "1d"}
    api = reports.client.get("/v1/analytics/conversion", params=query, headers=reports.headers)
    assert api.status_code == 200, api.text
    steps = report_tables(reports, "conversion", params)["steps"]
    assert [s["entered"] for s in steps] == [s["entered"] for s in api.json()["steps"]]
    assert steps[0]["entered"] > 0


@pytest.mark.parametrize("kind", ["revenue", "performance"])
def test_revenue_and_performance_reports_are_their_answers(reports: Reports, kind: str) -> None:
    api = reports.client.get(f"/v1/analytics/{kind}", params=PERIOD, headers=reports.headers)
    assert api.status_code == 200, api.text
    [summary] = report_tables(reports, kind, PERIOD)["summary"]
    assert summary["project_id"] == "shop"
    if kind == "revenue":
        assert summary["revenue"] == pytest.approx(api.json()["revenue"])
        assert summary["revenue"] == pytest.approx(
            sum(e["properties"]["revenue"] for e in reports.events if e["event"] == "purchase")
        )
    else:
        assert summary["horizon"] == api.json()["horizon"]


@pytest.mark.parametrize(
    ("kind", "params", "named"),
    [
        ("conversion", {"steps": ["cart_add", "purchase"], "window": "forever"}, "window"),
        ("conversion", {"steps": ["cart_add"]}, "steps"),
        ("overview", {"interval": "fortnight"}, "interval"),
        ("overview", {**PERIOD, "filter": ["nonsense"]}, "filter"),
        ("revenue", {"model": "half_touch"}, "model"),
        ("revenue", {"window": "1x"}, "window"),
        ("performance", {"top": [250]}, "top"),
        ("performance", {"bins": 1}, "bins"),
    ],
)
def test_bad_analysis_parameters_are_422_naming_them(
    reports: Reports, kind: str, params: dict[str, Any], named: str
) -> None:
    resp = reports.generate({"kind": kind, "params": params, "format": "csv"})
    body = assert_problem(resp, 422)
    assert named in resp.text, body
