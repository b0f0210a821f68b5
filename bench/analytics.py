"""Analytics over generated events, as ratios to same-run baselines (issue 9's acceptance).

  PYTHONPATH=src python bench/analytics.py [--events 10000000] [--out bench/results-analytics.json]

1. Events: bench/analytics_funnel.py's generator (users, 30 days, view / cart_add /
   checkout_start / purchase), plus carts so the overview has something to count: every
   cart event and purchase carries the cart ``c<user>_<day>`` and a purchase a ``revenue``
   property (5-500). Bulk-loaded into the DuckDB store the service will serve, and into chDB.
2. Overview, uncached: ``AnalyticsService.overview`` (the endpoint's own code) on DuckDB,
   the 15 days from 2024-01-16 by day beside the previous 15 (all rows read), median of
   ``--runs``; beside it, on the same engine and rows: a hand-written single SQL of the
   plain totals (events, distinct users, distinct carts, revenue per day and period: no
   abandonment or recovery logic) and a ``count(*) ... GROUP BY`` scan. ``--chdb-overview``
   times the overview on chDB as well.
3. Overview, cached, over HTTP: ``bench/server.py`` (the service as ``dataintel serve``
   builds it, uvicorn + uvloop + httptools) on that DuckDB file; one warm-up request
   (a miss), then ``--rate`` req/s of the same request for ``--seconds`` at a fixed rate
   (bench/loadgen.py, open loop, latency from the scheduled send time, after 1 s of
   warm-up at that rate): p50 / p99 and the X-Cache hit ratio. Beside it, under the same
   server command and rate: a bare FastAPI app answering the same JSON body (as a dict) at
   the same path, the house HTTP baseline.
4. Funnel: analytics_funnel's measurements (a 4-step ordered funnel, window 1 day) on the
   same rows: ours on DuckDB and chDB against the hand-written ``windowFunnel`` on chDB.

Prints one JSON object and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import analytics_funnel as funnel  # noqa: E402
from bench.loadgen import open_loop  # noqa: E402
from bench.serving import PIPELINE, Proc, cli, free_port, serve_app  # noqa: E402
from dataintel.analytics.params import AnalyticsParams, Interval  # noqa: E402
from dataintel.analytics.service import AnalyticsService  # noqa: E402
from dataintel.analytics.settings import DeployedSettings  # noqa: E402
from dataintel.model.snapshot import AnalyticsSettings  # noqa: E402
from dataintel.storage.analytics.port import AnalyticsStore  # noqa: E402

FROM = datetime(2024, 1, 16, tzinfo=UTC)
TO = datetime(2024, 1, 31, tzinfo=UTC)
PATH = (
    "/v1/analytics/overview?project_id=bench&from=2024-01-16T00:00:00Z"
    "&to=2024-01-31T00:00:00Z&interval=day"
)
TOTALS_SQL = """
SELECT CASE WHEN ts >= ? THEN 1 ELSE 0 END AS period, date_trunc('day', ts) AS day,
    count(*) AS events, count(DISTINCT user_id) AS users, count(DISTINCT cart_id) AS carts,
    sum(CASE WHEN event = 'purchase'
        THEN CAST(json_extract_string(properties, 'revenue') AS DOUBLE) END) AS revenue
FROM events WHERE project_id = ? AND ts >= ? AND ts < ?
GROUP BY period, day
"""
SCAN_SQL = """
SELECT date_trunc('day', ts) AS day, count(*) AS n FROM events
WHERE project_id = ? AND ts >= ? AND ts < ? GROUP BY day
"""


def with_carts(table: pa.Table, seed: int) -> pa.Table:
    """The funnel generator's events with carts (per user and day) and purchase revenue."""
    rng = np.random.default_rng(seed + 1)
    event = table.column("event").to_numpy(zero_copy_only=False)
    user = table.column("user_id").to_numpy(zero_copy_only=False)
    day = (pc.cast(table.column("ts"), pa.int64()).to_numpy() // 86_400_000_000).astype(str)
    in_cart = event != "view"
    carts = np.full(len(event), None, dtype=object)
    carts[in_cart] = np.char.add(
        np.char.add(np.char.add("c", user[in_cart].astype(str)), "_"), day[in_cart]
    )
    purchase = event == "purchase"
    properties = np.full(len(event), "{}", dtype=object)
    revenue = rng.integers(5, 501, size=int(purchase.sum())).astype(str)
    properties[purchase] = np.char.add(np.char.add('{"revenue": ', revenue), "}")
    cart_at = table.schema.get_field_index("cart_id")
    table = table.set_column(cart_at, "cart_id", pa.array(carts, pa.string()))
    props_at = table.schema.get_field_index("properties")
    return table.set_column(props_at, "properties", pa.array(properties, pa.string()))


def overview_uncached(store: AnalyticsStore, runs: int) -> tuple[float, dict[str, Any]]:
    params = AnalyticsParams(start=FROM, end=TO, interval=Interval.DAY, as_of=TO)
    deployed = DeployedSettings(None, AnalyticsSettings())
    seconds, answer = funnel.timed(
        lambda: AnalyticsService(store).overview("bench", params, deployed), runs
    )
    totals = answer.totals.model_dump(mode="json")
    return seconds, {name: value["value"] for name, value in totals.items()}


def yardsticks(store: AnalyticsStore, runs: int) -> dict[str, float]:
    start = FROM - (TO - FROM)
    totals_s, _ = funnel.timed(lambda: store.sql(TOTALS_SQL, [FROM, "bench", start, TO]), runs)
    scan_s, _ = funnel.timed(lambda: store.sql(SCAN_SQL, ["bench", start, TO]), runs)
    return {"totals_sql_s": totals_s, "count_scan_s": scan_s}


def fixed_rate(port: int, headers: dict[str, str], rate: int, seconds: float) -> dict[str, Any]:
    """p50 / p99 ms of GET PATH at ``rate`` req/s (open loop) after 1 s at that rate, and the
    count of each X-Cache value."""
    seen: Counter[bytes] = Counter()

    async def go() -> tuple[list[float], float]:
        await open_loop(port, PATH, [b""] * rate, headers, rate, method="GET")
        n = int(rate * seconds)
        return await open_loop(
            port, PATH, [b""] * n, headers, rate, method="GET", header=b"x-cache", seen=seen
        )

    latencies, achieved = asyncio.run(go())
    q = statistics.quantiles(latencies, n=100)
    out: dict[str, Any] = {"p50_ms": q[49], "p99_ms": q[98], "max_ms": max(latencies)}
    out.update({"rate": achieved, "target_rate": rate, "requests": len(latencies)})
    if seen:
        out["x_cache"] = {k.decode() or "absent": v for k, v in seen.items()}
        out["hit_ratio"] = seen[b"hit"] / sum(seen.values())
    return out


def serve(tmp: Path, env: dict[str, str], key: str, args: argparse.Namespace) -> dict[str, Any]:
    """The service on the loaded DuckDB file, then the bare baseline, one after the other."""
    out: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {key}"}
    server, port = serve_app(env)
    try:
        first = httpx.get(f"http://127.0.0.1:{port}{PATH}", headers=headers, timeout=600)
        assert first.status_code == 200, first.text[:300]
        out["first_request"] = {
            "x_cache": first.headers.get("x-cache"),
            "seconds": first.elapsed.total_seconds(),
            "bytes": len(first.content),
        }
        out["service"] = fixed_rate(port, headers, args.rate, args.seconds)
    finally:
        server.stop()
    (tmp / "overview.json").write_text(first.text)
    port = free_port()
    bare = Proc(
        [
            sys.executable,
            str(ROOT / "bench/server.py"),
            "--port",
            str(port),
            "--constant",
            str(tmp / "overview.json"),
            "--path",
            PATH.split("?")[0],
        ],
        dict(os.environ),
        f"http://127.0.0.1:{port}/health/ready",
    )
    try:
        size = len(httpx.get(f"http://127.0.0.1:{port}{PATH}").content)
        out["bare"] = {"bytes": size, **fixed_rate(port, {}, args.rate, args.seconds)}
    finally:
        bare.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3, help="runs per timed query (median)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--chdb-overview", action="store_true", help="time it on chDB too")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results-analytics.json")
    args = parser.parse_args()
    table = with_carts(funnel.generate(args.events, args.users, args.seed), args.seed)
    out: dict[str, Any] = {
        "events": args.events,
        "users": args.users,
        "runs": args.runs,
        "period": [FROM.isoformat(), TO.isoformat()],
        "load": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
    }
    fun: dict[str, Any] = {"steps": funnel.STEPS}
    overview: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = {
            **os.environ,
            "DATAINTEL_DATA_DIR": str(tmp / "data"),
            "DATAINTEL_RATE_LIMIT": "1000000/second",  # never refuses; its cost stays in the path
        }
        (tmp / "p.yaml").write_text(PIPELINE)
        cli(env, "apply", str(tmp / "p.yaml"), "--deploy")
        key = "di_" + cli(env, "init").split("di_", 1)[1].split()[0]

        ch = funnel.load_chdb(table, f"chdb:///{tmp}/ch")
        fun["chdb_windowfunnel_s"], fun["entered_windowfunnel"] = funnel.window_funnel(
            ch, args.runs
        )
        fun["ours_chdb_s"], fun["entered_chdb"] = funnel.ours(ch, args.runs)
        if args.chdb_overview:
            seconds, totals = overview_uncached(ch, args.runs)
            overview["chdb"] = {"overview_s": seconds, "totals": totals, **yardsticks(ch, 1)}
        ch.close()

        duck = funnel.load_duckdb(table, f"duckdb:///{tmp}/data/analytics.duckdb")
        del table
        fun["ours_duckdb_s"], fun["entered_duckdb"] = funnel.ours(duck, args.runs)
        seconds, totals = overview_uncached(duck, args.runs)
        overview["duckdb"] = {"overview_s": seconds, "totals": totals, **yardsticks(duck, 1)}
        duck.close()  # one process holds the DuckDB file: the server's now
        for engine in overview.values():
            engine["vs_totals_sql"] = engine["overview_s"] / engine["totals_sql_s"]
            engine["vs_count_scan"] = engine["overview_s"] / engine["count_scan_s"]

        http = serve(tmp, env, key, args)
    http["p99_vs_bare"] = http["service"]["p99_ms"] / http["bare"]["p99_ms"]
    http["p50_vs_bare"] = http["service"]["p50_ms"] / http["bare"]["p50_ms"]
    out["funnel"] = funnel.ratios(fun)
    out["overview_uncached"] = overview
    out["overview_cached_http"] = http
    out["targets"] = {
        "funnel_ratio_duckdb_le_1_5": out["funnel"]["ratio_duckdb"] <= 1.5,
        "funnel_ratio_chdb_le_1_5": out["funnel"]["ratio_chdb"] <= 1.5,
        "cached_p99_le_10ms": http["service"]["p99_ms"] <= 10.0,
    }
    out["load"]["loadavg_end"] = os.getloadavg()
    text = json.dumps(out, indent=2)
    print(text)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
