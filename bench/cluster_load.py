"""The business flow under load, through nginx in front of two API replicas (+ a worker),
and against one `dataintel serve` process, in the same run: ingest batches, feature reads
of the loaded users, analytics overview reads, each from its own client threads
(tests/faults/cluster_load.py's SteadyLoad with no pause: a closed model, each client sends
its next request when the last one is answered). Prints and writes JSON: throughput,
p50/p99 per route, error rate.

    python bench/cluster_load.py [--seconds 180] [--ingest 2 --features 4 --analytics 2]
                                 [--batch 20] [--only cluster|single]

The cluster is scripts/cluster.py's topology (PostgreSQL, Redis db 9, the Tansu broker,
chDB in the worker, datalake analytics on the replicas); the single process is
`dataintel serve` with its embedded defaults (SQLite metadata, event log and online store,
DuckDB analytics, processor in the process).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.faults.cluster_load import (  # noqa: E402
    REDIS_DB,
    SteadyLoad,
    orchestrator,
    summary,
    table,
)

USERS = [f"load-user-{n}" for n in range(200)]


@contextlib.contextmanager
def cluster(workdir: Path) -> Iterator[tuple[str, str]]:
    running = orchestrator().Cluster(workdir, redis=f"redis://127.0.0.1:6379/{REDIS_DB}")
    with running:
        yield running.url, running.key


@contextlib.contextmanager
def single(workdir: Path) -> Iterator[tuple[str, str]]:
    module = orchestrator()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAINTEL_")}
    env |= {
        "PYTHONPATH": str(ROOT / "src"),
        "DATAINTEL_DATA_DIR": str(workdir / "data"),
        "DATAINTEL_LOG_JSON": "true",
    }
    cli = [sys.executable, "-m", "dataintel.cli"]
    subprocess.run([*cli, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    demo = subprocess.run(
        [*cli, "demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    key = [m.group(1) for line in demo.splitlines() if (m := module.KEY_LINE.match(line))][-1]
    port = module.free_port()
    with (workdir / "serve.log").open("wb") as out:
        proc = subprocess.Popen(
            [*cli, "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = module.Process("serve", proc, workdir / "serve.log", port)
    try:
        url = f"http://127.0.0.1:{port}"
        module.wait_until(
            "serve ready", lambda: module.http_get(f"{url}/health/ready")[0] == 200, 90, proc
        )
        yield url, key
    finally:
        process.stop()


def run(side: str, args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"dataintel-load-{side}-"))
    starter = cluster if side == "cluster" else single
    with starter(workdir) as (url, key):
        load = SteadyLoad(
            url,
            key,
            USERS,
            batch=args.batch,
            pause=0.0,
            ingest_threads=args.ingest,
            feature_threads=args.features,
            analytics_threads=args.analytics,
            timeout=30.0,
        )
        with load:
            time.sleep(args.warmup)
            start = time.monotonic()
            time.sleep(args.seconds)
            end = time.monotonic()
        figures = summary(load.between(start, end), end - start)
    ingest = figures.get("ingest", {})
    result = {
        "side": side,
        "seconds": round(end - start, 1),
        "routes": figures,
        "requests_per_second": round(sum(f["per_second"] for f in figures.values()), 1),
        "events_per_second": round(ingest.get("per_second", 0) * args.batch, 1),
        "workdir": str(workdir),
    }
    print(
        table(
            f"\n{side}: {result['requests_per_second']} requests/s, "
            f"{result['events_per_second']} events/s",
            figures,
        ),
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="measured, per side")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--ingest", type=int, default=2, help="ingest clients")
    parser.add_argument("--features", type=int, default=4, help="feature-read clients")
    parser.add_argument("--analytics", type=int, default=2, help="analytics clients")
    parser.add_argument("--batch", type=int, default=20, help="events per ingest request")
    parser.add_argument("--only", choices=["cluster", "single"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-cluster-load.json")
    args = parser.parse_args()
    sides = [args.only] if args.only else ["cluster", "single"]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cores": os.cpu_count(),
        "clients": {"ingest": args.ingest, "features": args.features, "analytics": args.analytics},
        "batch": args.batch,
        "sides": [run(side, args) for side in sides],
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
