"""Helpers for crash tests: real `dataintel` processes, SIGKILLed, and an at-least-once
client that remembers exactly which events got a 2xx."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx

CONFIG = """
project: {id: crash, name: Crash test}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields: [{name: sku, type: string, required: true}, {name: price, type: number}]
features:
  - {name: adds, pipeline_id: web, source_event: cart_add, aggregation: COUNT,
     windows: [5m, 1h, lifetime]}
  - {name: spend, pipeline_id: web, source_event: cart_add, aggregation: SUM, field: price,
     windows: [1h, lifetime]}
  - {name: skus, pipeline_id: web, source_event: cart_add, aggregation: COUNT_DISTINCT,
     field: sku, windows: [24h]}
  - {name: last_sku, pipeline_id: web, source_event: cart_add, aggregation: LAST, field: sku,
     windows: [lifetime]}
"""
USERS = 97


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "dataintel.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout


def prepare(data_dir: Path, **extra: str) -> tuple[dict[str, str], str]:
    """Environment for the processes, the project deployed, and an admin key."""
    env = {
        **os.environ,
        "DATAINTEL_DATA_DIR": str(data_dir),
        "DATAINTEL_RATE_LIMIT": "",
        "DATAINTEL_SENSITIVE_RATE_LIMIT": "",  # GDPR and exports: polled, not abused
        "DATAINTEL_SENSITIVE_RATE_LIMIT_PER_IP": "",
        "DATAINTEL_LOG_LEVEL": "warning",
        **extra,
    }
    (data_dir.parent / "crash.yaml").write_text(CONFIG)
    cli(env, "apply", str(data_dir.parent / "crash.yaml"), "--deploy")
    match = re.search(r"di_[A-Za-z0-9_-]+", cli(env, "init"))
    assert match, "init printed no key"
    return env, match.group(0)


@dataclass
class Proc:
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dataintel.cli", *self.args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()


def wait_ready(port: int, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"server on {port} not ready after {timeout_s}s")


@dataclass
class Client:
    """Sends batches of fresh events; a batch without an answer is re-sent later (its events
    may or may not be stored: dedup makes the retry safe)."""

    port: int
    key: str
    batch: int = 200
    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    pending: list[list[dict[str, Any]]] = field(default_factory=list)
    counter: int = 0

    def _fresh(self) -> list[dict[str, Any]]:
        items = []
        for _ in range(self.batch):
            self.counter += 1
            items.append(
                {
                    "event_id": f"c{self.counter:08d}",
                    "event": "cart_add",
                    "user_id": f"u{self.counter % USERS}",
                    "properties": {"sku": f"s{self.counter % 13}", "price": self.counter % 50},
                }
            )
        return items

    def send_until_failure(self, max_seconds: float, query: str = "") -> bool:
        """Send until the server stops answering (True) or the time is up (False)."""
        url = f"http://127.0.0.1:{self.port}/ingest/crash/web/batch{query}"
        headers = {"Authorization": f"Bearer {self.key}"}
        deadline = time.monotonic() + max_seconds
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < deadline:
                items = self.pending.pop(0) if self.pending else self._fresh()
                self.sent.update(i["event_id"] for i in items)
                try:
                    resp = http.post(url, json=items, headers=headers)
                except httpx.HTTPError:
                    self.pending.append(items)
                    return True
                if resp.status_code != 200:
                    self.pending.append(items)
                    continue
                for item in resp.json()["items"]:
                    assert item["status"] in ("accepted", "duplicate"), item
                    self.acked.add(item["event_id"])
        return False

    def wait_processed(self, max_seconds: float) -> None:
        """Send one event at a time with ``?wait=processed`` until an answer says every sink
        has applied it: after several restarts the processor's catch-up can outlast one
        call's wait (``processed: false`` then), and the stores are only read once it is
        done."""
        url = f"http://127.0.0.1:{self.port}/ingest/crash/web/batch?wait=processed"
        headers = {"Authorization": f"Bearer {self.key}"}
        deadline = time.monotonic() + max_seconds
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < deadline:
                items = self._fresh()
                self.sent.update(i["event_id"] for i in items)
                resp = http.post(url, json=items, headers=headers)
                assert resp.status_code == 200, resp.text
                body = resp.json()
                self.acked.update(i["event_id"] for i in body["items"])
                if body["processed"]:
                    return
        raise AssertionError(f"not processed within {max_seconds} s")


def stored_events(data_dir: Path) -> tuple[int, set[str]]:
    con = duckdb.connect(str(data_dir / "analytics.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT event_id FROM events WHERE project_id = 'crash'").fetchall()
    finally:
        con.close()
    ids = [r[0] for r in rows]
    return len(ids), set(ids)


def assert_features_match_offline(data_dir: Path) -> int:
    """Every online feature value equals the offline recomputation over the analytics store
    (the processes are stopped; the same t for both). Returns how many values matched."""
    from dataintel.config.declarative.spec import parse
    from dataintel.features.offline.compute import compute_offline
    from dataintel.features.online.plans import plan_feature
    from dataintel.model.snapshot import FeatureSpec
    from dataintel.model.tiles import evaluate
    from dataintel.storage.analytics.registry import open_analytics
    from dataintel.storage.online.port import EntityRef
    from dataintel.storage.online.registry import open_online

    specs = [
        FeatureSpec.model_validate({**f.model_dump(), "version": 1}) for f in parse(CONFIG).features
    ]
    plans = [p for p in (plan_feature("crash", s) for s in specs) if p is not None]
    online = open_online(f"sqlite:///{data_dir / 'online.db'}", 90 * 86400)
    analytics = open_analytics(f"duckdb:///{data_dir / 'analytics.duckdb'}")
    try:
        t = time.time_ns() // 1000
        ids = [f"u{i}" for i in range(USERS)]
        refs = [EntityRef("crash", "user_id", i) for i in ids]
        blobs = online.read(refs, [p.state_field for p in plans])
        offline = compute_offline(analytics, "crash", specs, "user_id", ids, t)
        matched = 0
        for ref, found in zip(refs, blobs, strict=True):
            for plan in plans:
                got = evaluate(plan.aggregation, found.get(plan.state_field), plan.windows, t)
                for name, (value, _) in got.items():
                    want = offline[ref.entity_id][name]
                    if isinstance(want, float):
                        assert abs(value - want) <= 1e-9 * max(1.0, abs(want)), (name, ref)
                    else:
                        assert value == want, (name, ref.entity_id, value, want)
                    matched += 1
        return matched
    finally:
        online.close()
        analytics.close()
