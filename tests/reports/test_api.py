"""The report API end to end on the real embedded stores: 202 → poll → the file, in every
format, opened by its own reader and checked against a brute-force count of the events
sent; errors (422 naming the field, 403, 404 across tenants, 409 failed, 410 expired)."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from dataintel.auth.permissions import Role
from dataintel.main import create_app
from tests.conftest import Keys, assert_problem
from tests.reports.conftest import DAYS, NAMES, TODAY, Reports, expected_counts

COUNTS = {
    "kind": "event_counts",
    "params": {"start": DAYS[0].isoformat(), "end": TODAY.isoformat()},
}


def _want(reports: Reports) -> dict[tuple[str, str], int]:
    """Every (day, name) of the range, zeros included."""
    counted = expected_counts(reports.events)
    return {
        (d.date().isoformat(), n): counted.get((d.date().isoformat(), n), 0)
        for d in DAYS
        for n in NAMES
    }


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_event_counts_in_csv_json_parquet_are_the_brute_force_count(reports: Reports) -> None:
    queued = reports.generate({**COUNTS, "format": "csv"})
    assert queued.status_code == 202, queued.text
    body = queued.json()
    assert body["status"] in ("queued", "running", "done")
    assert queued.headers["location"] == body["url"] == f"/v1/reports/{body['id']}"
    done = reports.wait(body["id"])
    assert done.status_code == 200, done.text
    assert done.headers["content-type"] == "text/csv; charset=utf-8"
    assert done.headers["content-disposition"] == (
        f'attachment; filename="event_counts-{body["id"]}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(done.text)))
    got = {(r["day"], r["event"]): int(r["events"]) for r in rows}
    want = _want(reports)
    assert got == want
    assert 0 in got.values()  # page_view on the second day: a zero row, not a gap
    assert sum(got.values()) == len(reports.events)
    # The same numbers in JSON and Parquet.
    as_json = json.loads(reports.file({**COUNTS, "format": "json"}).content)
    assert as_json["report"]["kind"] == "event_counts"
    assert as_json["report"]["title"].startswith("Events per day from ")
    assert as_json["report"]["params"]["start"].startswith(DAYS[0].date().isoformat())
    got = {(r["day"], r["event"]): r["events"] for r in as_json["tables"]["daily"]}
    assert got == want
    assert as_json["charts"] == [
        {
            "kind": "line",
            "table": "daily",
            "x": "day",
            "y": "events",
            "series": "event",
            "title": "Events per day",
        }
    ]
    done = reports.file({**COUNTS, "format": "parquet"})
    assert done.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(done.content))
    assert table.column_names == ["day", "event", "events"]
    parquet = {(r["day"].isoformat(), r["event"]): r["events"] for r in table.to_pylist()}
    assert parquet == want


def test_event_counts_pdf_shows_title_chart_and_numbers(reports: Reports) -> None:
    done = reports.file({**COUNTS, "format": "pdf", "title": "Weekly activity"})
    assert done.headers["content-type"] == "application/pdf"
    assert done.headers["content-disposition"].endswith('.pdf"')
    pdf = PdfReader(io.BytesIO(done.content))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert "Weekly activity" in text
    assert "Events per day" in text  # the chart's heading
    lines = text.splitlines()
    # The table rows: day, event, count as text, in order; every count is there.
    for (day, name), count in _want(reports).items():
        at = [i for i in range(len(lines) - 2) if lines[i : i + 2] == [day, name]]
        assert at, (day, name)
        assert lines[at[-1] + 2] == str(count), (day, name, lines[at[-1] : at[-1] + 3])
    assert pdf.metadata is not None
    assert pdf.metadata.title == "Weekly activity"
    # The chart is vector graphics: its axis labels (the days) are drawn as text too.
    assert text.count(DAYS[0].date().isoformat()) >= 2


def test_events_report_is_the_export_query(reports: Reports) -> None:
    params = {"events": ["purchase"], "user_id": "u3", "start": DAYS[1].isoformat()}
    done = reports.file({"kind": "events", "params": params, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(done.text)))
    want = sorted(
        (
            e
            for e in reports.events
            if e["event"] == "purchase" and e["user_id"] == "u3" and e["event_id"] >= "d1"
        ),
        key=lambda e: e["timestamp"],
    )
    assert want
    assert [r["event_id"] for r in rows] == [e["event_id"] for e in want]
    assert rows[0]["timestamp"].endswith("Z")
    assert json.loads(rows[0]["properties"]) == want[0]["properties"]
    pdf = reports.file({"kind": "events", "params": params, "format": "pdf"})
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert f"events ({len(want)} rows)" in text
    assert all(e["event_id"] in text for e in want)
    # A query matching more than its limit fails the report, with the reason.
    queued = reports.generate({"kind": "events", "params": {"limit": 10}, "format": "json"})
    failed = reports.wait(queued.json()["id"])
    body = assert_problem(failed, 409)
    assert "more than limit=10 events" in body["detail"]
    assert body["report"]["status"] == "failed"
    assert body["report"]["attempts"] == 1


BAD: list[tuple[dict[str, Any], str]] = [
    ({"kind": "nope", "format": "csv"}, "/body/kind"),
    ({"kind": "event_counts", "format": "xlsx"}, "/body/format"),
    (
        {"kind": "event_counts", "params": {"start": "soon"}, "format": "csv"},
        "/body/params/start",
    ),
    ({"kind": "event_counts", "params": {"colour": 1}, "format": "csv"}, "/body/params/colour"),
    (
        {
            "kind": "event_counts",
            "params": {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            "format": "pdf",
        },
        "end must be after start",
    ),
    ({"kind": "events", "params": {"limit": 0}, "format": "csv"}, "/body/params/limit"),
    (
        {"kind": "events", "params": {"events": ["bad name"]}, "format": "csv"},
        "/body/params/events/0",
    ),
    ({"kind": "events", "format": "csv", "extra": 1}, "/body/extra"),
    ({"format": "csv"}, "/body/kind"),
]


def test_bad_requests_are_422_naming_the_field(client: TestClient, keys: Keys) -> None:
    keys.project("shop")
    headers = keys.headers([Role.ANALYST], "shop")
    for body, field in BAD:
        resp = client.post("/v1/reports/generate", json=body, headers=headers)
        assert_problem(resp, 422, field=field)


def test_permissions_and_tenant_isolation(reports: Reports) -> None:
    done = reports.file({**COUNTS, "format": "json"})
    report_id = done.headers["content-disposition"].split("-", 1)[1].split(".")[0]
    url = f"/v1/reports/{report_id}"
    ingest = reports.keys.headers([Role.INGEST], "shop")
    assert_problem(reports.generate({**COUNTS, "format": "csv"}, headers=ingest), 403)
    assert_problem(reports.client.get(url, headers=ingest), 403)
    reports.keys.project("other")
    other = reports.keys.headers([Role.ADMIN], "other")
    assert_problem(reports.client.get(url, headers=other), 404)
    cross = reports.client.get(url, params={"project_id": "shop"}, headers=other)
    assert_problem(cross, 404)
    # The other project's own report of the same kind sees none of shop's events.
    theirs = reports.generate({**COUNTS, "format": "json"}, headers=other)
    assert theirs.status_code == 202
    got = reports.wait(theirs.json()["id"], headers=other)
    assert got.status_code == 200
    assert json.loads(got.content)["tables"]["daily"] == []
    # A global admin names the project.
    admin = reports.keys.headers([Role.ADMIN])
    assert reports.client.get(url, params={"project_id": "shop"}, headers=admin).status_code == 200
    assert_problem(reports.client.get(url, headers=admin), 422, field="project_id")
    assert_problem(reports.client.get("/v1/reports/rep_" + "0" * 32, headers=reports.headers), 404)
    assert_problem(reports.client.get("/v1/reports/../x", headers=reports.headers), 404)


def test_reports_expire_with_410_and_their_files_are_deleted(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(report_poll_seconds=0.05, report_expiry_seconds=1)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = Keys(app)
        keys.project("shop")
        reports = Reports(client, keys, keys.headers([Role.ANALYST], "shop"))
        queued = reports.generate({**COUNTS, "format": "parquet"})
        report_id = queued.json()["id"]
        first = reports.wait(report_id)
        assert first.status_code == 200, first.text
        files = list(settings.resolved_reports_dir.glob(f"{report_id}.*"))
        assert len(files) == 1
        time.sleep(1.1)
        gone = assert_problem(client.get(f"/v1/reports/{report_id}", headers=reports.headers), 410)
        assert gone["expired_at"]
        deadline = time.monotonic() + 10
        while files[0].exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not files[0].exists()
        assert_problem(client.get(f"/v1/reports/{report_id}", headers=reports.headers), 410)


def test_a_report_survives_in_a_process_without_a_worker(make_settings: Any) -> None:
    """API role (the processor and the report worker run elsewhere): the report stays
    queued, visibly, and a later process with a worker generates it."""
    api = create_app(make_settings(processor_enabled=False))
    with TestClient(api, raise_server_exceptions=False) as client:
        keys = Keys(api)
        keys.project("shop")
        headers = keys.headers([Role.ANALYST], "shop")
        queued = client.post(
            "/v1/reports/generate", json={**COUNTS, "format": "csv"}, headers=headers
        )
        assert queued.status_code == 202
        report_id = queued.json()["id"]
        time.sleep(0.3)
        still = client.get(f"/v1/reports/{report_id}", headers=headers)
        assert still.status_code == 202
        assert still.json()["status"] == "queued"
        assert still.headers["retry-after"] == "1"
    both = create_app(make_settings(report_poll_seconds=0.05))
    with TestClient(both, raise_server_exceptions=False) as client:
        done = Reports(client, Keys(both), headers).wait(report_id)
        assert done.status_code == 200, done.text
        assert done.text.splitlines()[0] == '"day","event","events"'
