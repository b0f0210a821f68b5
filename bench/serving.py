"""Feature serving, side by side in one run: dataintel (embedded and Redis online store),
a no-op endpoint on the same server stack, and Feast's feature server on the same values.

  bash bench/feast/setup.sh            # once: Feast in bench/.venv-feast
  .venv/bin/python bench/serving.py --runs 3 --out bench/results-serving.json

Per online store: 10,000 users with ~100,000 cart events over 30 days; 20 values per user
(COUNT, SUM, AVG, MAX of cart_add x 5m, 1h, 24h, 7d, 30d). Requests: one user x 20 values
(GET) and 100 users x 20 values (POST batch). Max throughput is closed-loop (16 clients),
latency is open-loop at a fixed 1,000 req/s (latency counted from the scheduled send time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import closed_loop, open_loop  # noqa: E402

FEAST_PY = ROOT / "bench/.venv-feast/bin/python"
USERS = 10_000
EVENTS = 100_000
WINDOWS = ["5m", "1h", "24h", "7d", "30d"]
FEATURES = [("adds", "COUNT", None), ("spend", "SUM", "price"), ("avg_price", "AVG", "price")]
FEATURES += [("max_price", "MAX", "price")]
PIPELINE = """
project: {id: bench, name: Bench}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields: [{name: sku, type: string, required: true}, {name: price, type: number}]
"""
CLIENTS = 16
RATE = 1000


def config(with_features: bool) -> str:
    if not with_features:
        return PIPELINE
    lines = ["features:"]
    for name, agg, field in FEATURES:
        extra = f", field: {field}" if field else ""
        lines.append(
            f"  - {{name: {name}, pipeline_id: web, source_event: cart_add, aggregation: {agg}"
            f"{extra}, windows: [{', '.join(WINDOWS)}]}}"
        )
    return PIPELINE + "\n".join(lines) + "\n"


def value_names() -> list[str]:
    return [f"{name}_{w}" for name, _, _ in FEATURES for w in WINDOWS]


class Proc:
    def __init__(self, cmd: list[str], env: dict[str, str], ready: str) -> None:
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # stop() ends the whole group (gunicorn forks workers)
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(ready, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"{cmd} did not start")

    def stop(self) -> None:
        import signal

        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "dataintel.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def events(now_s: float, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(EVENTS):
        ago = rng.expovariate(1 / (5 * 86400)) % (30 * 86400)
        out.append(
            {
                "event_id": f"e{i}",
                "event": "cart_add",
                "timestamp": now_s - ago,
                "user_id": f"u{rng.randrange(USERS)}",
                "properties": {"sku": f"s{rng.randrange(500)}", "price": rng.randrange(1, 300)},
            }
        )
    return out


def start_dataintel(tmp: Path, online_url: str | None, port: int) -> tuple[Proc, str, float]:
    """A server with the bench project, its history ingested and its features built."""
    env = {
        **os.environ,
        "DATAINTEL_DATA_DIR": str(tmp / "data"),
        "DATAINTEL_RATE_LIMIT": "",
        "DATAINTEL_LOG_LEVEL": "warning",
        "DATAINTEL_INGEST_ALLOWED_LATENESS_SECONDS": str(40 * 86400),
        "DATAINTEL_CONFIG_CACHE_TTL_SECONDS": "0.5",
    }
    if online_url:
        env["DATAINTEL_ONLINE_URL"] = online_url
    (tmp / "p.yaml").write_text(config(False))
    cli(env, "apply", str(tmp / "p.yaml"), "--deploy")
    key = cli(env, "init").split("di_", 1)[1].split()[0]
    key = "di_" + key
    server = Proc(
        [sys.executable, str(ROOT / "bench/server.py"), "--port", str(port)],
        env,
        f"http://127.0.0.1:{port}/health/ready",
    )
    headers = {"Authorization": f"Bearer {key}"}
    history = events(time.time(), random.Random(1))
    with httpx.Client(timeout=120) as http:
        for s in range(0, len(history), 10_000):
            resp = http.post(
                f"http://127.0.0.1:{port}/ingest/bench/web/batch?wait=processed",
                content=orjson.dumps(history[s : s + 10_000]),
                headers={**headers, "Content-Type": "application/json"},
            )
            assert resp.status_code == 200, resp.text[:300]
        (tmp / "f.yaml").write_text(config(True))
        started = time.monotonic()
        cli(env, "apply", str(tmp / "f.yaml"), "--deploy")
        while True:  # backfill from history
            body = http.get(
                f"http://127.0.0.1:{port}/v1/features/definitions?project_id=bench",
                headers=headers,
            ).json()
            if body["features"] and all(f["status"] == "ready" for f in body["features"]):
                break
            time.sleep(0.2)
        backfill_s = time.monotonic() - started
    return server, key, backfill_s


def feast_values(port: int, key: str, path: Path) -> None:
    """Our values for every user, as the precomputed table Feast materializes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = value_names()
    rows: dict[str, list[Any]] = {"user_id": [], "event_timestamp": []}
    rows.update({n: [] for n in names})
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with httpx.Client(timeout=60) as http:
        for s in range(0, USERS, 1000):
            ids = [f"u{i}" for i in range(s, min(USERS, s + 1000))]
            resp = http.post(
                f"http://127.0.0.1:{port}/features/bench/users/batch",
                json={"user_ids": ids},
                headers={"Authorization": f"Bearer {key}"},
            )
            for r in resp.json()["results"]:
                rows["user_id"].append(r["entity_id"])
                rows["event_timestamp"].append(now)
                for n in names:
                    v = r["values"][n]
                    rows[n].append(None if v is None else float(v))
    pq.write_table(pa.table(rows), path)


def bodies_single(n: int, rng: random.Random) -> tuple[list[str], list[bytes]]:
    return [f"/features/bench/users/u{rng.randrange(USERS)}" for _ in range(n)], [b""] * n


def bodies_batch(n: int, rng: random.Random) -> list[bytes]:
    return [
        orjson.dumps({"user_ids": [f"u{rng.randrange(USERS)}" for _ in range(100)]})
        for _ in range(n)
    ]


def feast_bodies(n: int, size: int, rng: random.Random) -> list[bytes]:
    refs = [f"user_stats:{v}" for v in value_names()]
    return [
        orjson.dumps(
            {
                "features": refs,
                "entities": {"user_id": [f"u{rng.randrange(USERS)}" for _ in range(size)]},
            }
        )
        for _ in range(n)
    ]


async def measure(
    port: int,
    method: str,
    paths: list[str],
    bodies: list[bytes],
    headers: dict[str, str],
    rate_seconds: float,
) -> dict[str, float]:
    """Max req/s (closed loop), then p50/p99 open-loop at RATE req/s (1 s warm-up). When the
    server cannot sustain RATE, latency at RATE is unbounded (the queue grows): it is then
    measured at half the max throughput instead, and ``rate`` says so."""
    elapsed = await closed_loop(port, paths, list(bodies), headers, CLIENTS, method)
    rps = len(bodies) / elapsed
    rate = RATE if rps >= 1.1 * RATE else max(1, int(rps / 2))
    n = int(rate * rate_seconds)
    reps = (bodies * (n // len(bodies) + 2))[: n + rate]
    rpaths = (paths * (n // len(paths) + 2))[: n + rate]
    await open_loop(port, rpaths[0], reps[:rate], headers, rate, method=method, paths=rpaths[:rate])
    lat, achieved = await open_loop(
        port, rpaths[0], reps[rate:], headers, rate, method=method, paths=rpaths[rate:]
    )
    q = statistics.quantiles(lat, n=100)
    return {"rps": rps, "p50_ms": q[49], "p99_ms": q[98], "rate": achieved, "target_rate": rate}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_run(seconds: float) -> dict[str, Any]:
    rng = random.Random(7)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for store in ("embedded", "redis"):
            url = None
            if store == "redis":
                url = f"redis://127.0.0.1:6379/0?prefix=bench-{uuid.uuid4().hex[:8]}"
            port = free_port()
            (tmp / store).mkdir()
            server, key, backfill_s = start_dataintel(tmp / store, url, port)
            auth = {"Authorization": f"Bearer {key}"}
            json_h = {**auth, "Content-Type": "application/json"}
            try:
                single_paths, single_bodies = bodies_single(4000, rng)
                res: dict[str, Any] = {"backfill_s": backfill_s}
                res["noop_get"] = asyncio.run(
                    measure(port, "GET", ["/bench/noop"], single_bodies, auth, seconds)
                )
                res["single"] = asyncio.run(
                    measure(port, "GET", single_paths, single_bodies, auth, seconds)
                )
                res["batch100"] = asyncio.run(
                    measure(
                        port,
                        "POST",
                        ["/features/bench/users/batch"],
                        bodies_batch(400, rng),
                        json_h,
                        seconds,
                    )
                )
                if store == "redis" and FEAST_PY.exists():
                    feast_values(port, key, tmp / "values.parquet")
            finally:
                server.stop()
            out[store] = res
            print(json.dumps({store: res}), flush=True)
        if FEAST_PY.exists():
            out["feast"] = run_feast(tmp, seconds, rng)
    return out


def run_feast(tmp: Path, seconds: float, rng: random.Random) -> dict[str, Any]:
    repo = tmp / "feast"
    setup = subprocess.run(
        [
            str(FEAST_PY),
            str(ROOT / "bench/feast_side.py"),
            "setup",
            str(repo),
            "--values",
            str(tmp / "values.parquet"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    port = free_port()
    server = Proc(
        [str(FEAST_PY), str(ROOT / "bench/feast_side.py"), "serve", str(repo), "--port", str(port)],
        dict(os.environ),
        f"http://127.0.0.1:{port}/health",
    )
    headers = {"Content-Type": "application/json"}
    try:
        path = ["/get-online-features"]
        res: dict[str, Any] = {"materialize": json.loads(setup.stdout.strip().splitlines()[-1])}
        res["single"] = asyncio.run(
            measure(port, "POST", path, feast_bodies(2000, 1, rng), headers, seconds)
        )
        res["batch100"] = asyncio.run(
            measure(port, "POST", path, feast_bodies(200, 100, rng), headers, seconds)
        )
    finally:
        server.stop()
    return res


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="open-loop duration")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runs = [one_run(args.seconds) for _ in range(args.runs)]
    print(json.dumps(runs[-1], indent=2))
    if args.out:
        args.out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
