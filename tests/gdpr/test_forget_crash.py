"""kill -9 of the server while a forget request runs: after a restart the request resumes
at the first store not finished and ends ``finished``, with the subject gone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.gdpr.conftest import files_containing
from tests.stream.crashkit import Proc, free_port, prepare, wait_ready

USERS = [f"person-{i:03d}" for i in range(40)]


def _events(n: int) -> list[dict[str, object]]:
    start = datetime.now(UTC) - timedelta(hours=2)
    return [
        {
            "event_id": f"e{i}",
            "event": "cart_add",
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "user_id": USERS[i % len(USERS)],
            "cart_id": f"cart-of-{USERS[i % len(USERS)]}",
            "properties": {"sku": f"sku-{i % 17}", "price": 1.5},
        }
        for i in range(n)
    ]


def test_a_forget_request_killed_midway_finishes_after_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env, key = prepare(data_dir, DATAINTEL_GDPR_SUPPRESSION_REFRESH_SECONDS="0.2")
    port = free_port()
    server = Proc(["serve", "--port", str(port)], env)
    server.start()
    wait_ready(port)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    events = _events(40_000)
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        for start in range(0, len(events), 5000):
            resp = http.post(
                "/ingest/crash/web/batch?wait=processed", json=events[start : start + 5000]
            )
            assert resp.status_code == 200, resp.text
        caught = None
        for user in USERS[:5]:  # kill once a request is seen between two stores
            created = http.post(f"/v1/gdpr/forget/{user}?project_id=crash").json()
            status_url = f"/v1/gdpr/status/{created['request_id']}?project_id=crash"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                body = http.get(status_url).json()
                done = [s["store"] for s in body["stores"] if s["status"] == "finished"]
                if "event_log" in done and body["status"] == "running":
                    server.kill9()
                    caught = (user, status_url, done)
                    break
                if body["status"] != "running" and body["status"] != "pending":
                    break
                time.sleep(0.005)
            if caught:
                break
        assert caught, "no request was seen between two stores"
    user, status_url, done_before = caught
    assert len(done_before) < len(body["stores"])

    server.start()  # the same data directory: the runner takes the request up again
    wait_ready(port)
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        deadline = time.monotonic() + 60
        while (body := http.get(status_url).json())["status"] not in ("finished", "failed"):
            assert time.monotonic() < deadline, body
            time.sleep(0.1)
        assert body["status"] == "finished", body
        assert all(s["status"] == "finished" for s in body["stores"]), body
        export = http.get(f"/v1/gdpr/export/{user}?project_id=crash").json()
        assert export["events"] == []
    server.stop()
    leaks = files_containing(data_dir, {user, f"cart-of-{user}"})
    assert leaks == {}
