"""How long a forget request takes over a project of N events (issue 11: "a forget request
over a project with 1 M events finishes in minutes, not days"; the anchors promise 30 days).

  PYTHONPATH=src python bench/gdpr.py [--events 1000000] [--requests 3] \
      [--out bench/results-gdpr.json]

The embedded stack (SQLite log, DuckDB, SQLite online store, SQLite metadata), served by
``dataintel serve``'s app. N events of 100,000 users (views, cart adds with a cart per user
and day, purchases; sessions; a product id) over the last 2 days are ingested over HTTP and
processed by the stream processor, with user, cart and product features deployed. Then
``--requests`` SUPPRESS_WITH_DELETE requests, one at a time, for users with the most events;
each is timed from the POST to ``finished`` (every store erased, the subject's bytes gone:
SQLite files rebuilt, DuckDB file rewritten), with each store's own duration from its status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serving import cli, serve_app  # noqa: E402

USERS = 100_000
BATCH = 5_000
CONFIG = """
project: {id: bench, name: Bench}
pipelines:
  - id: web
    name: Web
    events:
      - {name: view, fields: [{name: product_id, type: string}]}
      - {name: cart_add, fields: [{name: product_id, type: string}, {name: price, type: number}]}
      - {name: purchase, fields: [{name: revenue, type: number}]}
features:
  - {name: views, pipeline_id: web, source_event: view, aggregation: COUNT, windows: [1h, 7d]}
  - {name: spend, pipeline_id: web, source_event: cart_add, aggregation: SUM, field: price,
     windows: [24h]}
  - {name: cart_value, pipeline_id: web, source_event: cart_add, entity_key: cart_id,
     aggregation: SUM, field: price, windows: [lifetime]}
  - {name: product_adds, pipeline_id: web, source_event: cart_add, entity_key: product_id,
     aggregation: COUNT, windows: [7d]}
"""


def generate(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    now = time.time()
    users = rng.zipf(1.3, n) % USERS  # a few heavy users, a long tail
    ago = rng.uniform(60, 2 * 86400, n)
    kinds = rng.choice(3, n, p=[0.8, 0.17, 0.03])
    products = rng.integers(0, 5000, n)
    names = ("view", "cart_add", "purchase")
    out = []
    for i in range(n):
        user, kind = int(users[i]), int(kinds[i])
        ts = now - float(ago[i])
        day = int(ts // 86400)
        event: dict[str, Any] = {
            "event_id": f"e{i}",
            "event": names[kind],
            "timestamp": datetime.fromtimestamp(ts, UTC).isoformat(),
            "user_id": f"user-{user:06d}",
            "session_id": f"s-{user:06d}-{day}",
        }
        if kind == 0:
            event["properties"] = {"product_id": f"p{products[i]}"}
        elif kind == 1:
            event["cart_id"] = f"c-{user:06d}-{day}"
            event["properties"] = {"product_id": f"p{products[i]}", "price": 10.0}
        else:
            event["cart_id"] = f"c-{user:06d}-{day}"
            event["properties"] = {"revenue": 30.0}
        out.append(event)
    return out


def ingest(base: str, headers: dict[str, str], events: list[dict[str, Any]]) -> float:
    started = time.monotonic()
    batches = [events[s : s + BATCH] for s in range(0, len(events), BATCH)]

    def send(batch: list[dict[str, Any]]) -> None:
        with httpx.Client(timeout=300) as http:
            resp = http.post(
                f"{base}/ingest/bench/web/batch",
                content=orjson.dumps(batch),
                headers={**headers, "Content-Type": "application/json"},
            )
            assert resp.status_code == 200, resp.text[:300]

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, batches))
    with httpx.Client(timeout=1800) as http:  # one last event, waited for: all are processed
        resp = http.post(
            f"{base}/ingest/bench/web/batch?wait=processed",
            json=[{**events[0], "event_id": "last"}],
            headers=headers,
        )
        assert resp.status_code == 200, resp.text[:300]
        assert resp.json()["processed"] is True, resp.text[:300]
    return time.monotonic() - started


def forget(base: str, headers: dict[str, str], user: str) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
        started = time.monotonic()
        created = http.post(f"/v1/gdpr/forget/{user}?project_id=bench")
        assert created.status_code == 202, created.text
        url = f"/v1/gdpr/status/{created.json()['request_id']}?project_id=bench"
        while (body := http.get(url).json())["status"] not in ("finished", "failed"):
            time.sleep(0.05)
        seconds = time.monotonic() - started
    assert body["status"] == "finished", body
    stores = {
        s["store"]: {
            "erased": s["erased"],
            "seconds": round(
                (
                    datetime.fromisoformat(s["finished_at"])
                    - datetime.fromisoformat(s["started_at"])
                ).total_seconds(),
                3,
            ),
        }
        for s in body["stores"]
    }
    return {"user": "(withheld)", "seconds": round(seconds, 3), "stores": stores}


def sizes(data_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(data_dir.iterdir()) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results-gdpr.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        env = {
            **os.environ,
            "DATAINTEL_DATA_DIR": str(data_dir),
            "DATAINTEL_RATE_LIMIT": "",
            "DATAINTEL_SENSITIVE_RATE_LIMIT": "",  # GDPR and exports: polled, not abused
            "DATAINTEL_SENSITIVE_RATE_LIMIT_PER_IP": "",
            "DATAINTEL_LOG_LEVEL": "warning",
            "DATAINTEL_INGEST_ALLOWED_LATENESS_SECONDS": str(3 * 86400),
            "DATAINTEL_WAIT_PROCESSED_TIMEOUT_SECONDS": "1800",
        }
        (Path(tmp) / "p.yaml").write_text(CONFIG)
        cli(env, "apply", str(Path(tmp) / "p.yaml"), "--deploy")
        key = "di_" + cli(env, "init").split("di_", 1)[1].split()[0]
        headers = {"Authorization": f"Bearer {key}"}
        events = generate(args.events)
        heavy = [u for u, _ in Counter(e["user_id"] for e in events).most_common(args.requests)]
        per_user = Counter(e["user_id"] for e in events)
        server, port = serve_app(env)
        try:
            base = f"http://127.0.0.1:{port}"
            ingest_s = ingest(base, headers, events)
            before = sizes(data_dir)
            runs = []
            for user in heavy:
                run = forget(base, headers, user)
                run["subject_events"] = per_user[user]
                runs.append(run)
                print(json.dumps(run))
        finally:
            server.stop()
    result = {
        "events": args.events,
        "ingest_and_process_seconds": round(ingest_s, 1),
        "file_bytes_before": before,
        "requests": runs,
        "median_seconds": sorted(r["seconds"] for r in runs)[len(runs) // 2],
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "requests"}, indent=2))


if __name__ == "__main__":
    main()
