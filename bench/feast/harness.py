"""The serving load pattern, shared by both sides (stdlib + bench/loadgen.py only, so it runs
under the project's venv and under bench/.venv-feast alike).

    from bench.feast.harness import measure
    result = asyncio.run(measure(port, "POST", ["/get-online-features"], bodies, headers))

- max throughput: closed loop, ``clients`` keep-alive connections each sending its next
  request as soon as the previous answer is read, for ``seconds`` (after a 1 s warm-up);
- latency: open loop at a fixed ``rate`` for ``seconds`` (after a 1 s warm-up at the same
  rate), latency counted from each request's scheduled send time so queueing shows.
  If the closed loop could not reach ``rate`` the server cannot sustain it and the queue (so
  the p99) would only grow with the duration: the fixed-rate figures are then null
  (``sustained: false``) and the latency at half the measured max rate is given instead.

Requests cycle through ``paths`` x ``bodies`` (request i: paths[i % len], bodies[i % len]).
Any status >= 300 aborts the measurement.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.loadgen import Conn, open_loop  # noqa: E402

CLIENTS = 16
SECONDS = 10.0
RATE = 1000.0
WARMUP = 1.0


async def closed_for(
    port: int,
    method: str,
    paths: list[str],
    bodies: list[bytes],
    headers: dict[str, str],
    clients: int,
    seconds: float,
) -> dict[str, float]:
    """Requests/s over ``seconds`` with ``clients`` connections (closed loop)."""
    done = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal done
        conn = await Conn.open(port)
        i = k * 7919
        try:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                status, resp = await conn.request(
                    method, paths[i % len(paths)], bodies[i % len(bodies)], headers
                )
                if status >= 300:
                    raise RuntimeError(f"{status}: {resp[:300]!r}")
                latencies.append((time.perf_counter() - sent) * 1000)
                done += 1
                i += 1
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {"rps": done / elapsed, "requests": done, "p50_ms": q[49], "p99_ms": q[98]}


async def fixed_rate(
    port: int,
    method: str,
    paths: list[str],
    bodies: list[bytes],
    headers: dict[str, str],
    rate: float,
    seconds: float,
    connections: int = 32,
) -> dict[str, float]:
    """p50/p90/p99/max in ms at ``rate`` req/s (open loop), after a 1 s warm-up."""

    def reps(n: int, offset: int) -> tuple[list[str], list[bytes]]:
        idx = range(offset, offset + n)
        return [paths[i % len(paths)] for i in idx], [bodies[i % len(bodies)] for i in idx]

    warm_paths, warm_bodies = reps(max(1, int(rate * WARMUP)), 0)
    await open_loop(
        port, warm_paths[0], warm_bodies, headers, rate, connections, method, warm_paths
    )
    run_paths, run_bodies = reps(int(rate * seconds), len(warm_bodies))
    lat, achieved = await open_loop(
        port, run_paths[0], run_bodies, headers, rate, connections, method, run_paths
    )
    q = statistics.quantiles(lat, n=100)
    return {
        "rate": rate,
        "achieved_rate": achieved,
        "p50_ms": q[49],
        "p90_ms": q[89],
        "p99_ms": q[98],
        "max_ms": max(lat),
    }


async def measure(
    port: int,
    method: str,
    paths: list[str],
    bodies: list[bytes],
    headers: dict[str, str],
    *,
    clients: int = CLIENTS,
    seconds: float = SECONDS,
    rate: float = RATE,
) -> dict[str, Any]:
    """Max throughput (closed loop) then latency at ``rate`` (open loop), one server."""
    await closed_for(port, method, paths, bodies, headers, clients, WARMUP)
    closed = await closed_for(port, method, paths, bodies, headers, clients, seconds)
    out: dict[str, Any] = {
        "max_rps": closed["rps"],
        "closed_p50_ms": closed["p50_ms"],
        "closed_p99_ms": closed["p99_ms"],
    }
    if closed["rps"] >= rate * 1.02:
        fixed = await fixed_rate(port, method, paths, bodies, headers, rate, seconds)
        out.update({f"at_rate_{k}": v for k, v in fixed.items()})
        out["sustained"] = fixed["achieved_rate"] >= rate * 0.98
    else:
        half = max(1.0, round(closed["rps"] / 2))
        fixed = await fixed_rate(port, method, paths, bodies, headers, half, seconds)
        out.update({"at_rate_rate": rate, "at_rate_p50_ms": None, "at_rate_p99_ms": None})
        out["sustained"] = False
        out["at_half_max"] = fixed
    return out


def median_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key, the median of the numeric values across runs (nested dicts too)."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [r.get(key) for r in runs]
        if isinstance(first, dict):
            out[key] = median_runs([v for v in values if isinstance(v, dict)])
        elif isinstance(first, bool):
            out[key] = all(values)
        elif all(isinstance(v, (int, float)) for v in values):
            out[key] = statistics.median(values)  # type: ignore[type-var]
        else:
            out[key] = first if all(v == first for v in values) else None
    return out
