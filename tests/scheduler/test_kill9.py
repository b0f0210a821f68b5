"""Two worker processes against PostgreSQL for a while, the holder of a run killed with
kill -9 mid-run and a replacement started: every slot ran exactly once to completion (one
row per slot, finished), the killed slot was taken over (two executions, two attempts),
every other slot executed exactly once, and no slot in the middle was skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.conftest import Keys, apply_yaml

ROOT = Path(__file__).resolve().parents[2]
SHOP = """
project: {id: shop, name: Shop}
pipelines: [{id: web, name: Web, events: [{name: view}]}]
"""


def spawn(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.Popen([sys.executable, "-m", "tests.scheduler.worker_proc", url], env=env)


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_two_workers_and_a_kill9_run_every_slot_once(
    app: Any, client: TestClient, keys: Keys, metadata_url: str
) -> None:
    keys.project("shop")
    apply_yaml(app, SHOP)
    db = create_engine(metadata_url)
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE sched_exec (slot TEXT, pid INTEGER)"))

    def executions() -> list[tuple[str, int]]:
        with db.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT slot, pid FROM sched_exec"))]

    def finished() -> set[str]:
        with db.connect() as conn:
            query = "SELECT slot_key FROM job_runs WHERE job = 'test.count' AND status = 'finished'"
            return {r[0] for r in conn.execute(text(query))}

    workers = [spawn(metadata_url), spawn(metadata_url)]
    victim_slot = None
    try:
        deadline = time.monotonic() + 60
        while len(executions()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = {w.pid: w for w in workers}
        while victim_slot is None and time.monotonic() < deadline:  # a run in flight
            done = {slot.replace("Z", "+00:00") for slot in finished()}
            for slot, pid in executions():
                if slot not in done and pid in pids:
                    os.kill(pid, signal.SIGKILL)
                    pids[pid].wait()
                    victim_slot = slot
                    break
            time.sleep(0.02)
        assert victim_slot is not None, "no run in flight to kill"
        workers.append(spawn(metadata_url))  # the restart
        time.sleep(8)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)

    with db.connect() as conn:
        runs = conn.execute(
            text("SELECT slot, status, attempts FROM job_runs WHERE job = 'test.count'")
        ).all()
    db.dispose()
    by_slot = {row[0]: row for row in runs}
    assert len(by_slot) == len(runs)  # one row per slot
    slots = sorted(by_slot)
    assert len(slots) >= 8
    assert slots == [slots[0] + timedelta(seconds=i) for i in range(len(slots))]  # no gap
    middle = slots[:-2]  # the last ones may have been running when the workers stopped
    assert all(by_slot[s][1] == "finished" for s in middle), runs
    ran = Counter(datetime.fromisoformat(slot) for slot, _ in executions())
    victim = datetime.fromisoformat(victim_slot)
    assert (ran[victim], by_slot[victim][2]) == (2, 2)  # killed mid-run, taken over once
    assert all(ran[s] == 1 for s in middle if s != victim), ran
