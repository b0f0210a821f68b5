"""Feast's side of bench/serving.py (HTTP serving) and of the historical benchmark, on the
data set of bench/data_gen.py. Runs with Feast's own virtualenv, never the project's:

  bash bench/feast/setup.sh
  bench/.venv-feast/bin/python bench/feast/run.py --serving --historical \
      --out bench/results-feast.json [--runs 3] [--seconds 10] [--data DIR]

Serving: the 20 values per user (data_gen's user_values.parquet) in a FeatureView
`user_stats`, `feast apply` + `feast materialize` into the online store (Redis on
127.0.0.1:6379 db 9 — a db of its own, flushed first — and Feast's SQLite online store), then
`feast serve` (the Python HTTP feature server: gunicorn + one uvicorn worker, like
dataintel's single uvicorn process; `--max-requests 0` so the worker is not recycled every
1,000 requests mid-measurement). Requests: POST /get-online-features with 1 and with 100
user ids x the 20 features, the same ids as dataintel's side (data_gen.request_users);
max throughput (closed loop, 16 connections) and latency at a fixed 1,000 req/s (open loop),
10 s each, by bench/feast/harness.py; each figure the median of --runs runs.

Historical: FeatureStore.get_historical_features over a FeatureView `user_history` whose
source is data_gen's history.parquet (one row per event: 1M rows x the 10 values as of that
event), with data_gen's 100k label rows; timed from the call to the finished DataFrame,
median of 3, with Feast's default file offline store (dask) and its DuckDB offline store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import data_gen  # noqa: E402
from bench.feast.harness import CLIENTS, RATE, SECONDS, measure, median_runs  # noqa: E402

REDIS_DB = 9
ONLINE = {
    "redis": 'online_store:\n  type: redis\n  connection_string: "127.0.0.1:6379,db={db}"\n',
    "sqlite": "online_store:\n  type: sqlite\n  path: {dir}/online.db\n",
}
OFFLINE = {"file": "offline_store:\n  type: file\n", "duckdb": "offline_store:\n  type: duckdb\n"}
REQUESTS = 4000


def write_repo(directory: Path, online: str, offline: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    yaml = f"project: dataintel_bench\nregistry: {directory}/registry.db\nprovider: local\n"
    yaml += ONLINE[online].format(db=REDIS_DB, dir=directory) + OFFLINE[offline]
    yaml += "entity_key_serialization_version: 3\n"
    (directory / "feature_store.yaml").write_text(yaml)


def definitions(data: Path) -> list[Any]:
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
    spec = json.loads((data / "spec.json").read_text())

    def view(name: str, path: Path, values: list[str], ttl: timedelta) -> FeatureView:
        return FeatureView(
            name=name,
            entities=[user],
            ttl=ttl,
            schema=[Field(name=v, dtype=Float64) for v in values],
            source=FileSource(name=name, path=str(path), timestamp_field="event_timestamp"),
            online=True,
        )

    # user_stats holds values as of the anchor: no TTL (served whatever the wall clock).
    # user_history's rows are windowed values (<= 30 d) as of each event: 30 d lookback.
    return [
        user,
        view("user_stats", data / "user_values.parquet", spec["values"], timedelta(0)),
        view(
            "user_history",
            data / "history.parquet",
            spec["historical_values"],
            timedelta(days=data_gen.DAYS),
        ),
    ]


def busy_share(seconds: float = 2.0) -> float:
    """Share of all CPUs busy over ``seconds`` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_idle(limit_s: float) -> float:
    """Wait (up to ``limit_s``) until other processes leave the CPUs mostly idle, so the
    measurement does not share the 2 cores with, say, another benchmark; returns the busy
    share seen last (recorded with the results)."""
    deadline = time.monotonic() + limit_s
    busy = busy_share()
    while busy > 0.15 and time.monotonic() < deadline:
        print(f"waiting for idle CPUs ({busy:.0%} busy)", file=sys.stderr, flush=True)
        time.sleep(5)
        busy = busy_share()
    return busy


class OtherCpu:
    """The share of the machine's CPU time used by processes other than ``pids`` (and their
    children) while the block runs: the noise from other work sharing the 2 cores."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids

    @staticmethod
    def _busy() -> int:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(f) - f[3] - f[4]

    def _ours(self) -> int:
        todo, seen, total = list(self.pids), set(), 0
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(stat[11]) + int(stat[12])
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
        return total

    def __enter__(self) -> OtherCpu:
        self.t0, self.busy0, self.ours0 = time.monotonic(), self._busy(), self._ours()
        return self

    def __exit__(self, *exc: object) -> None:
        ticks = (time.monotonic() - self.t0) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        other = (self._busy() - self.busy0) - (self._ours() - self.ours0)
        self.share = max(0.0, other / max(1.0, ticks))


def redis_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flush_redis_db() -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()


def prepare_online(data: Path, work: Path, online: str) -> tuple[Path, dict[str, float]]:
    """apply + materialize user_stats into the online store; returns the repo directory."""
    from feast import FeatureStore

    repo = work / f"repo-{online}"
    write_repo(repo, online, "file")
    if online == "redis":
        flush_redis_db()
    store = FeatureStore(repo_path=str(repo))
    start = time.perf_counter()
    store.apply(definitions(data))
    applied = time.perf_counter() - start
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the JSON result
        store.materialize(
            datetime(2000, 1, 1, tzinfo=UTC),
            datetime.now(UTC) + timedelta(days=365 * 5),
            feature_views=["user_stats"],
        )
    return repo, {"apply_s": applied, "materialize_s": time.perf_counter() - start}


class FeastServer:
    """`feast serve` in its own process group, stopped by its pid."""

    def __init__(self, repo: Path, port: int, workers: int) -> None:
        feast = str(Path(sys.executable).parent / "feast")
        cmd = [feast, "-c", str(repo), "serve", "-h", "127.0.0.1", "-p", str(port)]
        cmd += ["--no-access-log", "--workers", str(workers), "--max-requests", "0"]
        self.log = open(repo / "serve.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = port
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"feast serve exited: {(repo / 'serve.log').read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("feast serve did not start")

    def post(self, path: str, body: bytes) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def bodies(spec: dict[str, Any], size: int, n: int) -> list[bytes]:
    refs = [f"user_stats:{v}" for v in spec["values"]]
    return [
        json.dumps({"features": refs, "entities": {"user_id": ids}}).encode()
        for ids in data_gen.request_users(spec["seed"], spec["users"], n, size)
    ]


def check_values(server: FeastServer, data: Path, spec: dict[str, Any]) -> int:
    """Feast answers the precomputed values (a sample of users); returns values compared."""
    import math

    import pyarrow.parquet as pq

    table = pq.read_table(data / "user_values.parquet").to_pydict()
    ids = [f"u{i}" for i in range(0, spec["users"], max(1, spec["users"] // 100))]
    refs = [f"user_stats:{v}" for v in spec["values"]]
    body = json.dumps({"features": refs, "entities": {"user_id": ids}}).encode()
    resp = server.post("/get-online-features", body)
    names = resp["metadata"]["feature_names"]
    rows = {u: i for i, u in enumerate(table["user_id"])}
    compared = 0
    for name, column in zip(names, resp["results"], strict=True):
        if name == "user_id":
            continue
        for uid, got in zip(ids, column["values"], strict=True):
            want = table[name][rows[uid]]
            same = (want is None and (got is None or math.isnan(got))) or (
                want is not None and got is not None and abs(got - want) <= 1e-9 * abs(want)
            )
            if not same:
                raise AssertionError(f"{uid} {name}: Feast {got!r}, expected {want!r}")
            compared += 1
    return compared


def serving(
    data: Path, work: Path, stores: list[str], runs: int, args: argparse.Namespace
) -> dict[str, Any]:
    spec = json.loads((data / "spec.json").read_text())
    scenarios = {"single": bodies(spec, 1, REQUESTS), "batch100": bodies(spec, 100, REQUESTS // 10)}
    headers = {"Content-Type": "application/json"}
    out: dict[str, Any] = {}
    for online in stores:
        repo, setup = prepare_online(data, work, online)
        per_run: list[dict[str, Any]] = []
        for _ in range(runs):
            busy = wait_idle(args.wait_idle)
            server = FeastServer(repo, free_port(), args.workers)
            try:
                result: dict[str, Any] = {"cpu_busy_before": busy}
                result["values_checked"] = check_values(server, data, spec)
                for name, reqs in scenarios.items():
                    noise = OtherCpu(os.getpid(), server.proc.pid, *redis_pids())
                    with noise:
                        result[name] = asyncio.run(
                            measure(
                                server.port,
                                "POST",
                                ["/get-online-features"],
                                reqs,
                                headers,
                                clients=args.clients,
                                seconds=args.seconds,
                                rate=args.rate,
                            )
                        )
                    result[name]["other_cpu_share"] = noise.share
                    print(online, name, json.dumps(result[name]), file=sys.stderr, flush=True)
            finally:
                server.stop()
            per_run.append(result)
        out[online] = {**setup, **median_runs(per_run), "runs": per_run}
    if "redis" in stores:
        flush_redis_db()
    return out


def accuracy(df: Any, data: Path, spec: dict[str, Any]) -> dict[str, float]:
    """Share of Feast's values equal to (a) the point-in-time join it should do (the latest
    history row of the user at or before the label time, within the 30-day TTL) and (b) the
    exact windowed value at the label time (what dataintel computes from the events)."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    names = spec["historical_values"]
    ev = data_gen.load_events(data)
    start = int(ev["start_us"][0])
    user = df["user_id"].str[1:].astype(np.int64).to_numpy()
    t = pd.to_datetime(df["event_timestamp"], utc=True).dt.as_unit("us").astype("int64")
    t = t.to_numpy()
    exact = data_gen.values_at(ev, data_gen.HISTORICAL, user, t)
    hist = pq.read_table(data / "history.parquet", columns=names).to_pandas()
    keys = (ev["user"] << data_gen.SHIFT) | (ev["ts_us"] - start)
    order = np.argsort(keys, kind="stable")
    idx = np.searchsorted(keys[order], (user << data_gen.SHIFT) | (t - start), "right") - 1
    row = order[np.maximum(idx, 0)]
    ttl = data_gen.DAYS * 86400 * data_gen.US
    ok = (idx >= 0) & (ev["user"][row] == user) & (ev["ts_us"][row] >= t - ttl)
    pit_equal = exact_equal = total = 0
    for name in names:
        got = df[name].to_numpy(dtype=np.float64, na_value=np.nan)
        pit = np.where(ok, hist[name].to_numpy(dtype=np.float64)[row], np.nan)
        pit_equal += int(np.isclose(got, pit, rtol=1e-9, atol=0, equal_nan=True).sum())
        exact_equal += int(np.isclose(got, exact[name], rtol=1e-9, atol=0, equal_nan=True).sum())
        total += len(got)
    return {"equal_to_pit_join": pit_equal / total, "equal_to_exact_at_label": exact_equal / total}


def historical(
    data: Path, work: Path, offlines: list[str], runs: int, idle_s: float
) -> dict[str, Any]:
    import pandas as pd
    from feast import FeatureStore

    spec = json.loads((data / "spec.json").read_text())
    labels = pd.read_parquet(data / "labels.parquet")
    refs = [f"user_history:{v}" for v in spec["historical_values"]]
    out: dict[str, Any] = {}
    for offline in offlines:
        repo = work / f"repo-hist-{offline}"
        write_repo(repo, "sqlite", offline)
        store = FeatureStore(repo_path=str(repo))
        store.apply(definitions(data))
        times, busy, other = [], [], []
        rows = nulls = 0
        for _ in range(runs):
            busy.append(wait_idle(idle_s))
            with OtherCpu(os.getpid()) as noise:
                start = time.perf_counter()
                df = store.get_historical_features(entity_df=labels.copy(), features=refs)
                df = df.to_df()
                times.append(time.perf_counter() - start)
            other.append(noise.share)
            rows = len(df)
            nulls = int(df[spec["historical_values"][-1]].isna().sum())
            print("historical", offline, times[-1], file=sys.stderr, flush=True)
        out[offline] = {
            **accuracy(df, data, spec),
            "seconds": statistics.median(times),
            "runs_s": times,
            "cpu_busy_before": busy,
            "other_cpu_share": other,
            "label_rows": len(labels),
            "result_rows": rows,
            "rows_without_feature_row": nulls,
        }
    out["feature_rows"] = spec["events"]
    out["features"] = len(spec["historical_values"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serving", action="store_true")
    parser.add_argument("--historical", action="store_true")
    parser.add_argument("--data", type=Path, help="a bench/data_gen.py output (else generated)")
    parser.add_argument("--work", type=Path, help="Feast repos go here (default: a temp dir)")
    parser.add_argument("--online", action="append", choices=list(ONLINE))
    parser.add_argument("--offline", action="append", choices=list(OFFLINE))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--workers", type=int, default=1, help="feast serve worker processes")
    parser.add_argument(
        "--wait-idle", type=float, default=600, help="max s to wait for idle CPUs per run"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import feast

    with tempfile.TemporaryDirectory(prefix="feast-bench-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        data = args.data.resolve() if args.data else work / "data"
        if not (data / "spec.json").exists():
            data_gen.write(data)
        result: dict[str, Any] = {
            "feast": feast.__version__,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "loadavg_start": os.getloadavg(),
            "data": json.loads((data / "spec.json").read_text()),
            "load": {
                "clients": args.clients,
                "seconds": args.seconds,
                "rate": args.rate,
                "runs": args.runs,
                "workers": args.workers,
            },
        }
        result["data"].pop("values")
        if args.serving:
            result["serving"] = serving(
                data, work, args.online or ["redis", "sqlite"], args.runs, args
            )
        if args.historical:
            result["historical"] = historical(
                data, work, args.offline or ["file", "duckdb"], 3, args.wait_idle
            )
    result["loadavg_end"] = os.getloadavg()
    summary = json.dumps(result, indent=2, default=str)
    print(summary)
    if args.out:
        args.out.write_text(summary + "\n")


if __name__ == "__main__":
    main()
