"""Feature serving, side by side in one run: dataintel (embedded and Redis online store), a
bare FastAPI app answering a constant vector of the same shape under the same server command
(the baseline), and Feast's feature server on the same values.

  bash bench/feast/setup.sh            # once: Feast in bench/.venv-feast (else Feast is skipped)
  apt-get install wrk                  # the load generator for max throughput
  .venv/bin/python bench/serving.py --runs 3 --seconds 5 --out bench/results-serving.json

Per online store: 10,000 users with ~100,000 cart events over 30 days; 20 values per user
(COUNT, SUM, AVG, MAX of cart_add x 5m, 1h, 24h, 7d, 30d). The services run with their default
settings except a rate limit high enough never to refuse (its cost stays in the path) and the
access log at level info (written to /dev/null). Requests: one random user x 20 values (GET)
and 100 random users x 20 values (POST batch).

Every server is started once and every user is read once (steady state: caches warm);
then ``--runs`` rounds measure each server in turn (so the figures of a round share the
machine's state) and the medians are reported. Max throughput: wrk, closed loop, 1 thread,
16 connections (wrk from Debian; it has no fixed-rate mode). Latency: bench/loadgen.py open
loop at a fixed 1,000 req/s (one user) or 100 req/s (100 users), counted from the scheduled
send time; when a server cannot sustain the rate (max < 1.1 x rate) its latency is measured at
half its max instead and ``target_rate`` says so.
"""

from __future__ import annotations

import argparse
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

from bench.serving_load import USERS, Target, measure  # noqa: E402

FEAST_PY = ROOT / "bench/.venv-feast/bin/python"
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
        "DATAINTEL_RATE_LIMIT": "1000000/second",  # never refuses; its cost stays in the path
        "DATAINTEL_LOG_LEVEL": "info",
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


def serve_app(env: dict[str, str]) -> tuple[Proc, int]:
    """``dataintel serve``'s app (bench/server.py) with ``env``, ready; and its port."""
    port = free_port()
    server = Proc(
        [sys.executable, str(ROOT / "bench/server.py"), "--port", str(port)],
        env,
        f"http://127.0.0.1:{port}/health/ready",
    )
    return server, port


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_all(tmp: Path, with_feast: bool) -> tuple[list[Target], list[Proc], dict[str, Any]]:
    targets: list[Target] = []
    procs: list[Proc] = []
    setup: dict[str, Any] = {}
    single = ("GET", "/features/bench/users/{u}")
    batch = ("POST", '/features/bench/users/batch {"user_ids":[{ids100}]}')
    for store in ("embedded", "redis"):
        url = None
        if store == "redis":
            setup["redis_prefix"] = f"bench-{uuid.uuid4().hex[:8]}"
            url = f"redis://127.0.0.1:6379/0?prefix={setup['redis_prefix']}"
        port = free_port()
        (tmp / store).mkdir()
        server, key, backfill_s = start_dataintel(tmp / store, url, port)
        procs.append(server)
        setup[f"{store}_backfill_s"] = backfill_s
        auth = {"Authorization": f"Bearer {key}"}
        json_h = {**auth, "Content-Type": "application/json"}
        targets.append(Target(store, port, json_h, single, batch))
    embedded, redis_t = targets
    # The baseline answers a real vector: the same JSON shape and size.
    vector = httpx.get(
        f"http://127.0.0.1:{embedded.port}/features/bench/users/u1", headers=embedded.headers
    ).json()
    assert len(vector["values"]) == 20, vector
    (tmp / "vector.json").write_text(json.dumps(vector))
    port = free_port()
    procs.append(
        Proc(
            [
                sys.executable,
                str(ROOT / "bench/server.py"),
                "--port",
                str(port),
                "--bare",
                str(tmp / "vector.json"),
            ],
            dict(os.environ),
            f"http://127.0.0.1:{port}/health/ready",
        )
    )
    targets.insert(0, Target("bare", port, {"Content-Type": "application/json"}, single, batch))
    if with_feast:
        feast_values(redis_t.port, redis_t.headers["Authorization"][7:], tmp / "values.parquet")
        targets.append(start_feast(tmp, procs, setup))
    return targets, procs, setup


def start_feast(tmp: Path, procs: list[Proc], setup: dict[str, Any]) -> Target:
    repo = tmp / "feast"
    out = subprocess.run(
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
    setup["feast_materialize"] = json.loads(out.stdout.strip().splitlines()[-1])["materialize_s"]
    port = free_port()
    procs.append(
        Proc(
            [
                str(FEAST_PY),
                str(ROOT / "bench/feast_side.py"),
                "serve",
                str(repo),
                "--port",
                str(port),
            ],
            dict(os.environ),
            f"http://127.0.0.1:{port}/health",
        )
    )
    refs = json.dumps([f"user_stats:{v}" for v in value_names()])
    body = '/get-online-features {"features":' + refs + ',"entities":{"user_id":[%s]}}'
    return Target(
        "feast",
        port,
        {"Content-Type": "application/json"},
        ("POST", body % "{ids1}"),
        ("POST", body % "{ids100}"),
    )


def warm(target: Target) -> None:
    """Read every user once (steady state: a long-running server has its hot entities in
    its caches; a fresh one would decode each user's blobs on first read)."""
    _, spec = target.batch
    path, template = spec.split(" ", 1)
    with httpx.Client(timeout=120) as http:
        for s in range(0, USERS, 100):
            ids = ",".join(f'"u{i}"' for i in range(s, s + 100))
            body = template.replace("{ids100}", ids)
            resp = http.post(
                f"http://127.0.0.1:{target.port}{path}", content=body, headers=target.headers
            )
            assert resp.status_code == 200, resp.text[:300]


def drop_redis_keys(prefix: str | None) -> None:
    """The online store this run filled in Redis (10,000 entities) goes with the run."""
    if not prefix:
        return
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = list(client.scan_iter(match=f"{prefix}:*", count=10_000))
    for s in range(0, len(keys), 1000):
        client.delete(*keys[s : s + 1000])
    client.close()


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds, and the ratios of medians to the baseline and to Feast."""
    out: dict[str, Any] = {}
    for name in rounds[0]:
        out[name] = {}
        for kind in rounds[0][name]:
            rows = [r[name][kind] for r in rounds]
            out[name][kind] = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    for name in out:
        for kind, m in out[name].items():
            m["vs_bare"] = m["rps"] / out["bare"][kind]["rps"]
            if "feast" in out:
                m["vs_feast"] = m["rps"] / out["feast"][kind]["rps"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--no-feast", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with_feast = FEAST_PY.exists() and not args.no_feast
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        targets, procs, setup = start_all(tmp, with_feast)
        try:
            for target in targets:
                warm(target)
            for r in range(args.runs):
                result: dict[str, Any] = {}
                for target in targets:
                    result[target.name] = {
                        kind: measure(target, kind, args.seconds, tmp, 7 + r)
                        for kind in ("single", "batch100")
                    }
                    print(json.dumps({target.name: result[target.name]}), flush=True)
                rounds.append(result)
        finally:
            for proc in procs:
                proc.stop()
            drop_redis_keys(setup.get("redis_prefix"))
    report = {"setup": setup, "median": summary(rounds), "rounds": rounds}
    print(json.dumps(report["median"], indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
