"""kill -9 of real `dataintel` processes with reports in flight: a report queued before the
kill, or running during it, is generated after the restart (its lease runs out and another
run takes it), or, once its runs are exhausted, fails visibly with the reason. Never stuck.

API-only `serve` (DATAINTEL_PROCESSOR_ENABLED=false) plus a separate `dataintel worker`
sharing the data directory, like a scaled-out deployment; the embedded `serve` runs both."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import httpx

from tests.stream.crashkit import Client, Proc, free_port, prepare, wait_ready

FAST = {
    "DATAINTEL_REPORT_LEASE_SECONDS": "1",
    "DATAINTEL_REPORT_POLL_SECONDS": "0.05",
}
SLOW = {"kind": "events", "params": {"limit": 1_000_000}, "format": "pdf"}
COUNTS = {"kind": "event_counts", "params": {"start": "2020-01-01T00:00:00Z"}, "format": "csv"}


class Api:
    def __init__(self, port: int, key: str) -> None:
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            params={"project_id": "crash"},
            timeout=30,
        )

    def generate(self, body: dict[str, Any]) -> str:
        resp = self.http.post("/v1/reports/generate", json=body)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    def get(self, report_id: str) -> httpx.Response:
        return self.http.get(f"/v1/reports/{report_id}")

    def status(self, report_id: str) -> dict[str, Any]:
        resp = self.get(report_id)
        if resp.status_code == 202:
            return dict(resp.json())
        if resp.status_code == 409:
            return dict(resp.json()["report"])
        assert resp.status_code == 200, resp.text
        return {"status": "done"}

    def settled(self, report_id: str, timeout_s: float = 60) -> httpx.Response:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            resp = self.get(report_id)
            if resp.status_code != 202:
                return resp
            time.sleep(0.05)
        raise AssertionError(f"report {report_id} still {resp.json()} after {timeout_s}s")


def _wait_running(api: Api, report_id: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = api.status(report_id)
        if state["status"] == "running":
            return
        assert state["status"] == "queued", state
        time.sleep(0.005)
    raise AssertionError("the report never started")


def _kill_mid_run(api: Api, worker: Proc) -> str:
    """Queue a slow report, kill -9 the worker while it runs it; the report is left
    ``running`` with the dead worker's lease. (Should the run finish between the status
    read and the kill, try again with another report.)"""
    for _ in range(3):
        report_id = api.generate(SLOW)
        _wait_running(api, report_id)
        worker.kill9()
        left = api.status(report_id)
        if left["status"] == "running":
            assert left["attempts"] == 1, left
            return report_id
        worker.start()
    raise AssertionError("every run finished before its worker was killed")


def test_reports_in_flight_survive_kill9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env, key = prepare(data_dir, **FAST)
    port = free_port()
    api_only = Proc(["serve", "--port", str(port)], {**env, "DATAINTEL_PROCESSOR_ENABLED": "false"})
    worker = Proc(["worker"], {**env, "DATAINTEL_REPORT_MAX_ATTEMPTS": "2"})
    # Events first, applied by the embedded processor (so the reports have data to read;
    # an API-only process cannot tell when another process has applied them).
    embedded = Proc(["serve", "--port", str(port)], env)
    embedded.start()
    wait_ready(port)
    client = Client(port, key, batch=2000)
    assert not client.send_until_failure(max_seconds=2)
    client.batch = 1
    client.wait_processed(max_seconds=60)
    embedded.kill9()
    events = len(client.acked)

    # 1. Queued, then kill -9 before any worker ran it: the next worker generates it.
    api_only.start()
    wait_ready(port)
    api = Api(port, key)
    queued = api.generate(COUNTS)
    assert api.status(queued)["status"] == "queued"
    api_only.kill9()
    api_only.start()
    worker.start()
    wait_ready(port)
    done = api.settled(queued)
    assert done.status_code == 200, done.text
    rows = list(csv.DictReader(io.StringIO(done.text)))
    assert sum(int(r["events"]) for r in rows) == events

    # 2. Running when its worker is killed: the restarted worker retries it (2nd run).
    running = _kill_mid_run(api, worker)
    worker.start()
    done = api.settled(running)
    assert done.status_code == 200, done.text
    assert done.headers["content-type"] == "application/pdf"
    assert done.content.startswith(b"%PDF")
    assert (data_dir / "reports" / f"{running}.2.pdf").exists()  # written by the 2nd run

    # 3. SIGTERM mid-run: the worker gives the report back at once, the run not counted.
    released = api.generate(SLOW)
    _wait_running(api, released)
    worker.stop()
    back = api.status(released)
    assert (back["status"], back["attempts"]) == ("queued", 0), back

    # 4. Killed mid-run with no run left: the restarted worker fails it, with the reason.
    one_run = {**env, "DATAINTEL_REPORT_MAX_ATTEMPTS": "1"}
    worker = Proc(["worker"], one_run)
    worker.start()
    _wait_running(api, released)
    worker.kill9()
    doomed = released if api.status(released)["status"] == "running" else ""
    if not doomed:  # it finished before the kill: another one
        worker.start()
        doomed = _kill_mid_run(api, worker)
    last = Proc(["worker"], one_run)
    last.start()
    failed = api.settled(doomed)
    assert failed.status_code == 409, failed.text
    body = failed.json()
    assert "interrupted 1 times" in body["detail"]
    assert body["report"]["status"] == "failed"
    last.stop()
    api_only.stop()
    # A done report keeps one file: the one its last run wrote.
    names = sorted(p.name for p in (data_dir / "reports").iterdir())
    assert [n for n in names if n.startswith(queued)] == [f"{queued}.1.csv"]
    assert [n for n in names if n.startswith(running)] == [f"{running}.2.pdf"]
