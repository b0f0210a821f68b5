"""The load side of bench/serving.py: what to ask each server, max req/s with wrk (closed
loop) and latency at a fixed rate with bench/loadgen.py (open loop)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import open_loop

USERS = 10_000
CLIENTS = 16
RATE = 1000  # one user per request
BATCH_RATE = 100  # 100 users per request


@dataclass
class Target:
    """One server and how to ask it for one user and for 100 users."""

    name: str
    port: int
    headers: dict[str, str]
    single: tuple[str, str]  # method, path ("{u}" = a random user id) or body template
    batch: tuple[str, str]


WRK_LUA = """
math.randomseed({seed})
local users = {users}
local method, path, body, n = "{method}", "{path}", {body}, {n}
local headers = {headers}
local function user() return "u" .. math.random(0, users - 1) end
local function ids(n)
  local out = {{}}
  for i = 1, n do out[i] = '"' .. user() .. '"' end
  return table.concat(out, ",")
end
request = function()
  if body == nil then
    return wrk.format(method, (path:gsub("{{u}}", user())), headers)
  end
  return wrk.format(method, path, headers, (body:gsub("{{ids}}", ids(n))))
end
"""


def lua_string(text: str | None) -> str:
    return "nil" if text is None else json.dumps(text)


def wrk(target: Target, kind: str, seconds: float, tmp: Path, seed: int) -> float:
    """Max req/s, closed loop (wrk, 1 thread, CLIENTS connections); fails on any non-2xx."""
    method, spec = target.single if kind == "single" else target.batch
    path, body = (spec, None) if method == "GET" else spec.split(" ", 1)
    headers = (
        "{"
        + ",".join(f"[{json.dumps(k)}]={json.dumps(v)}" for k, v in target.headers.items())
        + "}"
    )
    script = tmp / f"{target.name}-{kind}.lua"
    script.write_text(
        WRK_LUA.format(
            seed=seed,
            users=USERS,
            method=method,
            path=path,
            body=lua_string(
                None
                if body is None
                else body.replace("{ids1}", "{ids}").replace("{ids100}", "{ids}")
            ),
            n=1 if body is None or "{ids1}" in body else 100,
            headers=headers,
        )
    )
    cmd = ["wrk", "-t1", f"-c{CLIENTS}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    cmd += ["-s", str(script)]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{target.port}"], check=True, capture_output=True, text=True
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"{target.name} {kind}: {out}")
    if "Socket errors" in out:  # e.g. a reply cut by wrk's own stop: noted, not fatal
        print(f"{target.name} {kind}: {out.splitlines()[-3].strip()}", file=sys.stderr)
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]


def requests_for(
    target: Target, kind: str, n: int, rng: random.Random
) -> tuple[list[str], list[bytes]]:
    method, spec = target.single if kind == "single" else target.batch
    if method == "GET":
        return [spec.replace("{u}", f"u{rng.randrange(USERS)}") for _ in range(n)], [b""] * n
    path, body = spec.split(" ", 1)
    size = 1 if "{ids1}" in body else 100
    out = []
    for _ in range(n):
        ids = ",".join(f'"u{rng.randrange(USERS)}"' for _ in range(size))
        out.append(body.replace("{ids1}", ids).replace("{ids100}", ids).encode())
    return [path], out


def fixed_rate(
    target: Target, kind: str, rate: int, seconds: float, rng: random.Random
) -> dict[str, float]:
    """p50/p99 ms open loop at ``rate`` req/s after 1 s of warm-up at the same rate."""
    method = target.single[0] if kind == "single" else target.batch[0]
    n = int(rate * seconds)
    paths, bodies = requests_for(target, kind, n + rate, rng)
    rpaths = (paths * (len(bodies) // len(paths) + 1))[: len(bodies)]
    headers = {**target.headers}

    async def go() -> tuple[list[float], float]:
        await open_loop(
            target.port, rpaths[0], bodies[:rate], headers, rate, method=method, paths=rpaths[:rate]
        )
        return await open_loop(
            target.port, rpaths[0], bodies[rate:], headers, rate, method=method, paths=rpaths[rate:]
        )

    lat, achieved = asyncio.run(go())
    q = statistics.quantiles(lat, n=100)
    return {"p50_ms": q[49], "p99_ms": q[98], "rate": achieved, "target_rate": rate}


def measure(target: Target, kind: str, seconds: float, tmp: Path, seed: int) -> dict[str, float]:
    wrk(target, kind, 1, tmp, seed)  # warm-up
    rps = wrk(target, kind, seconds, tmp, seed)
    wanted = RATE if kind == "single" else BATCH_RATE
    rate = wanted if rps >= 1.1 * wanted else max(1, int(rps / 2))
    return {"rps": rps, **fixed_rate(target, kind, rate, seconds, random.Random(seed))}
