"""A 4-step funnel over generated events: this service's funnel (DuckDB and chDB stores)
against a hand-written ClickHouse ``windowFunnel`` query on chDB over the same rows.

  PYTHONPATH=src python bench/analytics_funnel.py [--events 10000000] [--users 200000]

Prints one JSON object: seconds per query (median of --runs) and the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from dataintel.analytics.funnels import run_funnel
from dataintel.analytics.funnels_spec import EventMatch, FunnelSpec
from dataintel.storage.analytics.decode import EVENT_SCHEMA
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics

STEPS = ["view", "cart_add", "checkout_start", "purchase"]
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 30


def generate(n: int, users: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    kinds = rng.choice(4, size=n, p=[0.7, 0.15, 0.1, 0.05])
    start_us = int(START.timestamp() * 1_000_000)
    ts = start_us + rng.integers(0, DAYS * 86_400_000_000, size=n)
    user = rng.integers(0, users, size=n)
    names = np.array(STEPS, dtype=object)[kinds]
    return pa.table(
        {
            "project_id": pa.array(["bench"] * n),
            "pipeline_id": pa.array(["web"] * n),
            "pipeline_version": pa.array(np.ones(n, np.int64)),
            "event_id": pa.array(np.char.add("e", np.arange(n).astype(str)).astype(object)),
            "event": pa.array(names, pa.string()),
            "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "received_at": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "user_id": pa.array(np.char.add("u", user.astype(str)).astype(object), pa.string()),
            "cart_id": pa.nulls(n, pa.string()),
            "session_id": pa.nulls(n, pa.string()),
            "properties": pa.array(["{}"] * n),
            "log_partition": pa.array(np.zeros(n, np.int64)),
            "log_offset": pa.array(np.arange(n, dtype=np.int64)),
        },
        schema=EVENT_SCHEMA,
    )


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def funnel_spec() -> FunnelSpec:
    return FunnelSpec(
        steps=tuple(EventMatch(s) for s in STEPS),
        start=START,
        end=START + timedelta(days=DAYS),
        window=timedelta(days=1),
    )


def load_chdb(table: pa.Table, url: str) -> AnalyticsStore:
    """A chDB store at ``url`` holding ``table`` (bulk load, bypassing the log)."""
    ch = open_analytics(url)
    engine: Any = ch._engine
    for start in range(0, table.num_rows, 1_000_000):
        engine.insert("events", table.slice(start, 1_000_000), None)
    return ch


def load_duckdb(table: pa.Table, url: str) -> AnalyticsStore:
    """A DuckDB store at ``url`` holding ``table`` (bulk load, bypassing the log)."""
    duck = open_analytics(url)
    db: Any = duck._db
    naive = table.set_column(5, "ts", table.column("ts").cast(pa.timestamp("us")))
    naive = naive.set_column(6, "received_at", naive.column("received_at").cast(pa.timestamp("us")))
    db.register("bulk", naive)
    db.execute("INSERT INTO events SELECT * FROM bulk")
    db.unregister("bulk")
    return duck


def window_funnel(ch: AnalyticsStore, runs: int) -> tuple[float, list[int]]:
    """The hand-written ``windowFunnel`` query on chDB: median seconds, entered per step."""
    engine: Any = ch._engine
    conditions = ", ".join(f"event = '{s}'" for s in STEPS)
    query = (
        "SELECT level, count() AS n FROM (SELECT user_id, "
        f"windowFunnel(86400000000)(toUInt64(toUnixTimestamp64Micro(ts)), {conditions}) "
        "AS level FROM events "
        "WHERE project_id = 'bench' GROUP BY user_id) GROUP BY level ORDER BY level"
    )
    seconds, levels = timed(lambda: engine.table(query, {}).to_pylist(), runs)
    per_level = {int(r["level"]): int(r["n"]) for r in levels}
    return seconds, [sum(v for k, v in per_level.items() if k >= i) for i in range(1, 5)]


def ours(store: AnalyticsStore, runs: int) -> tuple[float, list[int]]:
    """This service's funnel on ``store``: median seconds, entered per step."""
    spec = funnel_spec()
    seconds, result = timed(lambda: run_funnel(store, "bench", spec), runs)
    return seconds, [s.entered for s in result.total.steps]


def ratios(out: dict[str, Any]) -> dict[str, Any]:
    out["equal"] = out["entered_chdb"] == out["entered_duckdb"] == out["entered_windowfunnel"]
    out["ratio_chdb"] = out["ours_chdb_s"] / out["chdb_windowfunnel_s"]
    out["ratio_duckdb"] = out["ours_duckdb_s"] / out["chdb_windowfunnel_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    table = generate(args.events, args.users, args.seed)
    out: dict[str, Any] = {"events": args.events, "users": args.users, "steps": STEPS}
    with tempfile.TemporaryDirectory() as where:
        ch = load_chdb(table, f"chdb:///{where}/ch")
        out["chdb_windowfunnel_s"], out["entered_windowfunnel"] = window_funnel(ch, args.runs)
        out["ours_chdb_s"], out["entered_chdb"] = ours(ch, args.runs)
        ch.close()
        duck = load_duckdb(table, f"duckdb:///{where}/a.duckdb")
        out["ours_duckdb_s"], out["entered_duckdb"] = ours(duck, args.runs)
        duck.close()
    print(json.dumps(ratios(out), indent=2))


if __name__ == "__main__":
    main()
