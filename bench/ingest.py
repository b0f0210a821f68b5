"""Ingest benchmark: batch throughput, single-event latency, processor throughput.

Every figure is measured next to its baseline in the same run, on the same machine:
- HTTP ingest vs a no-op POST route on the same server stack (bench/server.py), same bodies;
- the processor (log → DuckDB, exactly once) vs a plain DuckDB insert of the same rows.

Usage:  .venv/bin/python bench/ingest.py [--runs 3] [--kafka] [--out results.json]
Prints a Markdown table (medians of the runs) for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import closed_loop, open_loop  # noqa: E402

CONFIG = """
project: {id: bench, name: Bench}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields:
          - {name: sku, type: string, required: true}
          - {name: price, type: number, required: true}
          - {name: quantity, type: number}
          - {name: currency, type: string}
"""
BATCH = 1_000
CLIENTS = 4


def event(i: int, run: str) -> dict[str, Any]:
    return {
        "event_id": f"{run}-{i:09d}",
        "event": "cart_add",
        "timestamp": "2026-11-24T10:00:00Z",
        "user_id": f"u{i % 5000}",
        "cart_id": f"c{i % 20000}",
        "properties": {
            "sku": f"sku-{i % 977}",
            "price": (i % 300) + 0.99,
            "quantity": 1,
            "currency": "EUR",
        },
    }


def bodies(n_batches: int, run: str) -> list[bytes]:
    return [
        orjson.dumps([event(b * BATCH + i, run) for i in range(BATCH)]) for b in range(n_batches)
    ]


class Server:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env, self.port = env, port
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench/server.py"), "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url("/health/ready"), timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("bench server did not start")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(30)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


async def batch_throughput(port: int, path: str, key: str, payloads: list[bytes]) -> float:
    """events/s with CLIENTS concurrent clients posting 1,000-event batches."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    elapsed = await closed_loop(port, path, payloads, headers, CLIENTS)
    return len(payloads) * BATCH / elapsed


async def fixed_rate_latency(
    port: int, path: str, key: str, rate: int, seconds: float, run: str
) -> dict[str, float]:
    """Open-loop single-event requests at ``rate``/s: p50/p99 in ms and the achieved rate.
    A 2-second warm-up at the same rate comes first and is not counted (the first requests
    pay for connection set-up, the key lookup, validator compilation)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    warm = [orjson.dumps(event(i, run + "w")) for i in range(2 * rate)]
    await open_loop(port, path, warm, headers, rate)
    payloads = [orjson.dumps(event(i, run)) for i in range(int(rate * seconds))]
    latencies, achieved = await open_loop(port, path, payloads, headers, rate)
    q = statistics.quantiles(latencies, n=100)
    return {"p50_ms": q[49], "p99_ms": q[98], "rate": achieved}


def processor_throughput(n_events: int) -> dict[str, float]:
    """Log → DuckDB with the real processor code path (decode, dedup, positions, one
    transaction per micro-batch) vs a plain DuckDB insert of the same Arrow rows."""
    import duckdb

    from dataintel.storage import records
    from dataintel.storage.analytics.decode import decode_entries
    from dataintel.storage.analytics.registry import open_analytics
    from dataintel.storage.eventlog.port import LogEntry

    run = uuid.uuid4().hex[:6]
    entries = []
    for i in range(n_events):
        e = event(i, run)
        stored: records.StoredEvent = {
            "project_id": "bench",
            "pipeline_id": "web",
            "pipeline_version": 1,
            "event_id": e["event_id"],
            "event": "cart_add",
            "ts": 1_795_000_000_000_000 + i,
            "received_at": 1_795_000_000_000_000 + i,
            "user_id": e["user_id"],
            "cart_id": e["cart_id"],
            "session_id": None,
            "properties": e["properties"],
        }
        entries.append(LogEntry(0, i, records.encode(stored)))
    with tempfile.TemporaryDirectory() as tmp:
        store = open_analytics(f"duckdb:///{tmp}/a.duckdb")
        start = time.perf_counter()
        for s in range(0, n_events, 10_000):
            store.apply(entries[s : s + 10_000])
        ours = n_events / (time.perf_counter() - start)
        store.close()
        con = duckdb.connect(f"{tmp}/b.duckdb")
        first = decode_entries(entries[:10_000])  # noqa: F841 - read by DuckDB
        con.execute("CREATE TABLE t AS SELECT * FROM first LIMIT 0")
        start = time.perf_counter()
        for s in range(0, n_events, 10_000):
            chunk = decode_entries(entries[s : s + 10_000])  # noqa: F841 - read by DuckDB
            con.execute("INSERT INTO t SELECT * FROM chunk")
        base = n_events / (time.perf_counter() - start)
        con.close()
    return {"processor_eps": ours, "plain_insert_eps": base, "ratio": ours / base}


def prepare(data_dir: Path, extra: dict[str, str]) -> tuple[dict[str, str], str]:
    env = {
        **os.environ,
        "DATAINTEL_DATA_DIR": str(data_dir),
        "DATAINTEL_RATE_LIMIT": "",
        "DATAINTEL_LOG_LEVEL": "warning",
        # The generated data has a fixed anchor (reproducible runs): never too late to ingest.
        "DATAINTEL_INGEST_ALLOWED_LATENESS_SECONDS": str(10 * 365 * 86400),
        **extra,
    }
    cfg = data_dir.parent / "bench.yaml"
    cfg.write_text(CONFIG)
    cli = [sys.executable, "-m", "dataintel.cli"]
    subprocess.run([*cli, "apply", str(cfg), "--deploy"], env=env, check=True, capture_output=True)
    out = subprocess.run([*cli, "init"], env=env, check=True, capture_output=True, text=True)
    match = re.search(r"di_[A-Za-z0-9_-]+", out.stdout)
    assert match
    return env, match.group(0)


def one_run(extra: dict[str, str], port: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as tmp:
        env, key = prepare(Path(tmp) / "data", extra)
        payloads = bodies(100, run)
        worker = None
        if extra.get("DATAINTEL_PROCESSOR_ENABLED") == "false" and not extra.get("NO_WORKER"):
            worker = subprocess.Popen(
                [sys.executable, "-m", "dataintel.cli", "worker"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        with Server(env, port):
            noop = asyncio.run(batch_throughput(port, "/bench/noop", key, payloads))
            ours = asyncio.run(batch_throughput(port, "/ingest/bench/web/batch", key, payloads))
            lat_noop = asyncio.run(
                fixed_rate_latency(port, "/bench/noop", key, 1000, 10, run + "n")
            )
            lat = asyncio.run(
                fixed_rate_latency(port, "/ingest/bench/web", key, 1000, 10, run + "s")
            )
        if worker is not None:
            worker.terminate()
            worker.wait(60)
    return {
        "batch_eps": ours,
        "noop_batch_eps": noop,
        "batch_ratio": ours / noop,
        "single_p50_ms": lat["p50_ms"],
        "single_p99_ms": lat["p99_ms"],
        "noop_p50_ms": lat_noop["p50_ms"],
        "noop_p99_ms": lat_noop["p99_ms"],
        "single_rate": lat["rate"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kafka", action="store_true", help="also run with the Kafka log")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--mode", action="append", help="run only these modes (repeat)")
    args = parser.parse_args()
    from tests.storage.kafka_broker import free_port, running_broker

    modes: dict[str, dict[str, str]] = {
        "embedded": {},
        "embedded, worker process": {"DATAINTEL_PROCESSOR_ENABLED": "false"},
        # Diagnostic: the API alone, nothing consuming the log (shows the API's own tail).
        "api alone, no processor": {"DATAINTEL_PROCESSOR_ENABLED": "false", "NO_WORKER": "1"},
    }
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        if args.kafka:
            broker = stack.enter_context(running_broker(Path(tempfile.mkdtemp())))
            modes["kafka"] = {
                "DATAINTEL_EVENTLOG_URL": broker.url("bench-" + uuid.uuid4().hex[:6], 4)
            }
        for mode, extra in modes.items():
            if args.mode and mode not in args.mode:
                continue
            runs = [one_run(extra, free_port()) for _ in range(args.runs)]
            results[mode] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            results[mode]["runs"] = runs
    procs = [processor_throughput(200_000) for _ in range(args.runs)]
    results["processor"] = {k: statistics.median(p[k] for p in procs) for k in procs[0]}
    print(
        json.dumps(
            {k: {m: v for m, v in d.items() if m != "runs"} for k, d in results.items()}, indent=2
        )
    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
