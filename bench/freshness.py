"""Freshness: from the 2xx of an ingest request to the value visible in serving, while
events flow at fixed rates (default 500, 2,000 and 5,000 events/s, batches of 100) for
``--users`` users. Every 100 ms a probe event for a fresh user is sent; the probe then polls
that user's vector (every 2 ms) until ``adds_5m`` is 1. Embedded default: processor in the
API process.

Baseline, same server, same run: the probes with no other traffic (rate 0), i.e. the floor
set by the processor's poll interval, one micro-batch and the probe's own round trips.
Target (issue 8 §3): p99 ≤ 250 ms at 5,000 events/s.

  .venv/bin/python bench/freshness.py [--rates 0,500,2000,5000] --seconds 15 [--online redis://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.serving as serving  # noqa: E402
from bench.loadgen import Conn  # noqa: E402
from bench.serving import free_port, start_dataintel  # noqa: E402

BATCH = 100


async def sender(port: int, key: str, rate: int, seconds: float, users: int) -> int:
    conn = await Conn.open(port)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    per_second = rate // BATCH
    sent = 0
    t0 = time.perf_counter()
    if per_second == 0:
        await asyncio.sleep(seconds)
        conn.close()
        return 0
    for b in range(int(per_second * seconds)):
        due = t0 + b / per_second
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = [
            {
                "event": "cart_add",
                "user_id": f"u{(b * BATCH + i) % users}",
                "properties": {"sku": "s", "price": 1 + i % 50},
            }
            for i in range(BATCH)
        ]
        status, _ = await conn.post("/ingest/bench/web/batch", orjson.dumps(body), headers)
        assert status == 200, status
        sent += BATCH
    conn.close()
    return sent


async def probes(port: int, key: str, seconds: float, tag: str) -> list[float]:
    ingest, reader = await Conn.open(port), await Conn.open(port)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    out: list[float] = []
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
        user = f"probe-{tag}-{n}"
        body = orjson.dumps({"event": "cart_add", "user_id": user, "properties": {"sku": "p"}})
        status, _ = await ingest.post("/ingest/bench/web", body, headers)
        acked = time.perf_counter()
        assert status == 202, status
        while True:
            status, resp = await reader.request(
                "GET", f"/features/bench/users/{user}?features=adds_5m", b"", headers
            )
            if status == 200 and orjson.loads(resp)["values"]["adds_5m"] == 1:
                out.append((time.perf_counter() - acked) * 1000)
                break
            await asyncio.sleep(0.002)
        await asyncio.sleep(max(0.0, 0.1 - out[-1] / 1000))
    ingest.close()
    reader.close()
    return out


async def run(port: int, key: str, rate: int, seconds: float, users: int) -> dict[str, Any]:
    started = time.perf_counter()
    sent, lat = await asyncio.gather(
        sender(port, key, rate, seconds, users), probes(port, key, seconds, str(rate))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(lat)

    def rank(p: float) -> float:  # nearest rank: never beyond what was measured
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return {
        "probes": len(lat),
        "p50_ms": rank(0.5),
        "p99_ms": rank(0.99),
        "max_ms": ordered[-1],
        "events_sent": sent,
        "rate": sent / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="0,500,2000,5000", help="events/s, in order")
    parser.add_argument("--seconds", type=float, default=15, help="per rate")
    parser.add_argument("--pause", type=float, default=3, help="idle seconds between rates")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--online", default=None)
    parser.add_argument("--history", type=int, default=10_000, help="events ingested first")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    serving.EVENTS = args.history
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        server, key, _ = start_dataintel(Path(d), args.online, port)
        result: dict[str, Any] = {"target": {"rate": 5000, "p99_ms": 250}}
        try:
            for rate in (int(r) for r in args.rates.split(",")):
                result[str(rate)] = asyncio.run(run(port, key, rate, args.seconds, args.users))
                print(rate, json.dumps(result[str(rate)]), file=sys.stderr)
                time.sleep(args.pause)  # let a backlog drain before the next rate
        finally:
            server.stop()
    result["online"] = args.online or "embedded"
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
