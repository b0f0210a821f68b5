"""Feature processor throughput: 10 features x 5 windows, side by side with the analytics
sink alone (the processor of the ingestion issue) on the same events in the same run.

The process runs with the garbage-collector settings of a processor process
(``dataintel.stream.gc_tuning.tune_gc``), as ``dataintel serve`` / ``worker`` do. Target
(issue 8 §3): 50,000 events/s with features, on both online stores.

Run: .venv/bin/python bench/features.py --runs 3 [--events 200000] [--online redis]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from dataintel.settings import Settings
from dataintel.storage import records
from dataintel.storage.eventlog.port import LogEntry

FEATURES_YAML = """
project: {id: bench, name: Bench}
pipelines:
  - id: web
    name: Web
    events:
      - name: cart_add
        fields:
          - {name: sku, type: string, required: true}
          - {name: price, type: number, required: true}
      - name: product_view
        fields: [{name: sku, type: string, required: true}, {name: price, type: number}]
features:
  - {name: adds, pipeline_id: web, source_event: cart_add, aggregation: COUNT}
  - {name: add_value, pipeline_id: web, source_event: cart_add, aggregation: SUM, field: price}
  - {name: avg_add, pipeline_id: web, source_event: cart_add, aggregation: AVG, field: price}
  - {name: max_add, pipeline_id: web, source_event: cart_add, aggregation: MAX, field: price}
  - {name: min_add, pipeline_id: web, source_event: cart_add, aggregation: MIN, field: price}
  - {name: add_skus, pipeline_id: web, source_event: cart_add, aggregation: COUNT_DISTINCT,
     field: sku}
  - {name: last_sku, pipeline_id: web, source_event: cart_add, aggregation: LAST, field: sku}
  - {name: views, pipeline_id: web, source_event: product_view, aggregation: COUNT}
  - {name: view_skus, pipeline_id: web, source_event: product_view,
     aggregation: COUNT_DISTINCT, field: sku}
  - {name: cart_value, pipeline_id: web, source_event: cart_add, entity_key: cart_id,
     aggregation: SUM, field: price}
"""
TARGET_EPS = 50_000


def make_entries(n: int, users: int, now_us: int) -> list[LogEntry]:
    """n events over the last hour for ``users`` users, arriving in time order."""
    run = uuid.uuid4().hex[:6]
    out = []
    for i in range(n):
        ts = now_us - 3_600_000_000 + i * 3_600_000_000 // n
        u = (i * 7919) % users
        stored: records.StoredEvent = {
            "project_id": "bench",
            "pipeline_id": "web",
            "pipeline_version": 1,
            "event_id": f"{run}-{i}",
            "event": "cart_add" if i % 3 else "product_view",
            "ts": ts,
            "received_at": ts,
            "user_id": f"u{u}",
            "cart_id": f"c{u}-{i // 50_000}",
            "session_id": None,
            "properties": {"sku": f"sku-{i % 500}", "price": float(i % 97) + 0.99},
        }
        out.append(LogEntry(0, i, records.encode(stored)))
    return out


def one_run(n: int, users: int, online_url: str | None, batch: int) -> dict[str, float]:
    from dataintel.config.declarative.apply import apply
    from dataintel.config.declarative.spec import parse
    from dataintel.config.deployments.active import ActiveConfigCache
    from dataintel.features.online.engine import FeatureEngine
    from dataintel.storage.analytics.registry import open_analytics
    from dataintel.storage.metadata import migrate
    from dataintel.storage.metadata.engine import make_engine, make_sessionmaker
    from dataintel.storage.online.registry import open_online

    now = time.time_ns() // 1000
    entries = make_entries(n, users, now)
    # The entries stand for the log (on disk in a real processor): keep them out of the
    # collector's walks, as the start-up heap of a processor process is.
    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/meta.db")
        migrate.upgrade(engine)
        sessions = make_sessionmaker(engine)
        configs = ActiveConfigCache(sessions, 60)
        with sessions.begin() as session:
            apply(session, parse(FEATURES_YAML), by="bench", cache=configs, deploy=True)

        base = open_analytics(f"duckdb:///{tmp}/base.duckdb")
        start, cpu = time.perf_counter(), time.process_time()
        for s in range(0, n, batch):
            base.apply(entries[s : s + batch])
        analytics_only = n / (time.perf_counter() - start)
        analytics_only_cpu = n / (time.process_time() - cpu)
        base.close()

        url = online_url or f"sqlite:///{tmp}/online.db"
        if url.startswith("redis"):
            url += ("&" if "?" in url else "?") + f"prefix=bench-{uuid.uuid4().hex[:8]}"
        online = open_online(url, 86400)
        analytics = open_analytics(f"duckdb:///{tmp}/a.duckdb")
        features = FeatureEngine(online, analytics, configs, sessions, lambda: now)
        features.maybe_backfill()  # marks the (empty) versions built
        start, cpu = time.perf_counter(), time.process_time()
        for s in range(0, n, batch):
            chunk = entries[s : s + batch]
            features.apply(chunk, analytics.apply(chunk))
        both = n / (time.perf_counter() - start)
        both_cpu = n / (time.process_time() - cpu)
        features.close()
        analytics.close()
        online.close()
        engine.dispose()
    # *_cpu: events per CPU-second of this process (all threads; Redis' own CPU is not in
    # it): steadier than wall time when other work shares the cores.
    return {
        "with_features_eps": both,
        "analytics_only_eps": analytics_only,
        "with_features_eps_cpu": both_cpu,
        "analytics_only_eps_cpu": analytics_only_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--online", default=None, help="online store URL (default embedded)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--batch",
        type=int,
        default=Settings.model_fields["processor_batch_events"].default,
        help="entries per micro-batch (default: the processor's, processor_batch_events)",
    )
    parser.add_argument(
        "--default-gc", action="store_true", help="CPython's GC defaults (older trees)"
    )
    args = parser.parse_args()
    if not args.default_gc:
        from dataintel.stream.gc_tuning import tune_gc

        tune_gc()
    runs = [one_run(args.events, args.users, args.online, args.batch) for _ in range(args.runs)]
    result: dict[str, Any] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    result["ratio"] = result["with_features_eps"] / result["analytics_only_eps"]
    result["target_eps"] = TARGET_EPS
    result["of_target"] = result["with_features_eps"] / TARGET_EPS
    result["runs"] = runs
    result["online"] = args.online or "embedded"
    result["batch"] = args.batch
    result["gc"] = "default" if args.default_gc else "tuned"
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
