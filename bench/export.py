"""Exports stream in bounded memory: the service's peak RSS while each export route streams
N rows, against its RSS before, at two sizes (N/10 and N): a route that held its result
in memory would grow with N. Issue 11's acceptance ("streamed in constant memory on 1 M
rows").

  PYTHONPATH=src python bench/export.py [--events 1000000] [--out bench/results-export.json]

Data: the analytics bench's generated events (bench/analytics_funnel.py; 200,000 users over
January 2024: view / cart_add / checkout_start / purchase, carts, revenue) with a share of
the views turned into `prediction` events, bulk-loaded into the DuckDB store the service
serves. Routes: GET /v1/export/events (every event), GET /v1/export/predictions (every
prediction with its outcome), POST /v1/export/custom (a row export, at its 100,000-row
streaming cap) and GET /v1/export/features (one user feature for 100,000 users per page).
RSS is sampled every 20 ms from /proc/<pid>/status (VmRSS) of the server process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import analytics_funnel as funnel  # noqa: E402
from bench.analytics import with_carts  # noqa: E402
from bench.serving import cli, serve_app  # noqa: E402

CONFIG = """
project: {id: bench, name: Bench}
templates: [platform]
pipelines:
  - id: web
    name: Web
    events:
      - {name: view}
      - {name: cart_add}
      - {name: checkout_start}
      - {name: purchase, fields: [{name: revenue, type: number}]}
features:
  - {name: adds, pipeline_id: web, source_event: cart_add, aggregation: COUNT,
     windows: [24h, 7d]}
"""


def with_predictions(table: pa.Table, share: float, seed: int) -> pa.Table:
    """Turn ``share`` of the views into predictions of the user's cart of that day."""
    rng = np.random.default_rng(seed + 2)
    event = table.column("event").to_numpy(zero_copy_only=False).copy()
    props = table.column("properties").to_numpy(zero_copy_only=False).copy()
    users = table.column("user_id").to_numpy(zero_copy_only=False)
    day = (table.column("ts").cast(pa.int64()).to_numpy() // 86_400_000_000).astype(str)
    carts = table.column("cart_id").to_numpy(zero_copy_only=False).copy()
    chosen = (event == "view") & (rng.random(len(event)) < share)
    event[chosen] = "prediction"
    p = rng.random(int(chosen.sum())).round(4).astype(str)
    props[chosen] = np.char.add(np.char.add('{"model_version": "v1", "probability": ', p), "}")
    carts[chosen] = np.char.add(
        np.char.add(np.char.add("c", users[chosen].astype(str)), "_"), day[chosen]
    )
    for name, values in (("event", event), ("properties", props), ("cart_id", carts)):
        at = table.schema.get_field_index(name)
        table = table.set_column(at, name, pa.array(values, pa.string()))
    return table


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(port: int, pid: int, key: str, method: str, path: str, **kw: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    sampler = RssSampler(pid)
    before = sampler.rss()
    rows = size = 0
    began = time.perf_counter()
    url = f"http://127.0.0.1:{port}{path}"
    with (
        sampler,
        httpx.Client(timeout=3600) as client,
        client.stream(method, url, headers=headers, **kw) as r,
    ):
        assert r.status_code == 200, r.read()[:300]
        for line in r.iter_lines():
            rows += 1
            size += len(line) + 1
    seconds = time.perf_counter() - began
    return {
        "rows": rows,
        "bytes": size,
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before / 2**20, 1),
        "rss_peak_mb": round(sampler.peak / 2**20, 1),
        "rss_growth_mb": round((sampler.peak - before) / 2**20, 1),
    }


def routes(scale: float) -> list[tuple[str, str, str, dict[str, Any]]]:
    users = int(100_000 * scale)
    custom = {
        "events": ["view", "cart_add"],
        "fields": ["event_id", "timestamp", "user_id"],
        "limit": int(100_000 * scale),
    }
    return [
        ("events", "GET", "/v1/export/events?project_id=bench&format=ndjson", {}),
        # the same again: what stays is the engine's page cache, not the stream
        ("events_again", "GET", "/v1/export/events?project_id=bench&format=ndjson", {}),
        ("predictions", "GET", "/v1/export/predictions?project_id=bench&horizon=1d", {}),
        ("custom", "POST", "/v1/export/custom?project_id=bench", {"json": custom}),
        (
            "features",
            "GET",
            f"/v1/export/features?project_id=bench&format=csv&as_of=2024-01-31T00:00:00Z&limit={users}",
            {},
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results-export.json")
    parser.add_argument(
        "--memory-limit", default=None, help="DuckDB's memory_limit (e.g. 256MB; default its own)"
    )
    args = parser.parse_args()
    out: dict[str, Any] = {"events": args.events, "load": {"loadavg_start": os.getloadavg()}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = {
            **os.environ,
            "DATAINTEL_DATA_DIR": str(tmp / "data"),
            "DATAINTEL_RATE_LIMIT": "1000000/second",
            "DATAINTEL_SENSITIVE_RATE_LIMIT": "",  # GDPR and exports: polled, not abused
            "DATAINTEL_SENSITIVE_RATE_LIMIT_PER_IP": "",
        }
        (tmp / "p.yaml").write_text(CONFIG)
        cli(env, "apply", str(tmp / "p.yaml"), "--deploy")
        key = "di_" + cli(env, "init").split("di_", 1)[1].split()[0]
        for scale in (0.1, 1.0):
            n = int(args.events * scale)
            table = with_predictions(with_carts(funnel.generate(n, args.users, 7), 7), 0.05, 7)
            if (tmp / "data" / "analytics.duckdb").exists():
                (tmp / "data" / "analytics.duckdb").unlink()
            funnel.load_duckdb(table, f"duckdb:///{tmp}/data/analytics.duckdb").close()
            del table
            server, port = serve_app(env)
            try:
                sizes: dict[str, Any] = {}
                for name, method, path, kw in routes(scale):
                    sizes[name] = measure(port, server.proc.pid, key, method, path, **kw)
                    print(n, name, sizes[name], file=sys.stderr)
                out[str(n)] = sizes
            finally:
                server.stop()
    out["load"]["loadavg_end"] = os.getloadavg()
    text = json.dumps(out, indent=2)
    print(text)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
