"""Dashboard load times through a real browser on a 10 M-event analytics store (issue 10).

  PYTHONPATH=src python bench/dashboard.py [--events 10000000] [--runs 3] [--data DIR]

1. Data: bench/analytics.py's events (bench/analytics_funnel.py's generator with carts and
   purchase revenue, January 2024) plus a modest layer of platform events so the revenue and
   model pages have something to draw: for ``--platform-share`` of the carts, a ``prediction``
   (model_version v1 or v2, probability drawn higher for carts bought later) 1 s after the
   cart's first event, then an ``intervention`` (status sent) 1 s later for 90 % of them or a
   ``holdout`` for 10 %. Bulk-loaded into ``DIR/analytics.duckdb`` (the store the service
   serves); ``--data DIR`` reuses a store built there before.
2. The service: bench/server.py (``dataintel serve``'s app, uvicorn) on that store, an
   analyst API key of the project minted into its metadata store (ApiKeyService).
3. Debian's Chromium driven by Playwright, the browser clock fixed at 2024-01-31T00:00Z (the
   end of the generated data: the pages' presets are relative to "now"), at 1280x900. Per
   run: a fresh service process (its in-process analytics cache empty, DuckDB's buffers cold;
   the OS page cache stays warm), sign in, then overview (sign-in click → rendered), funnel,
   revenue, model by clicking the navigation: **cold**; then the four again: **warm** (the
   same requests; only the overview endpoint has an answer cache, X-Cache hit; the funnel,
   revenue and performance endpoints recompute, on warm DuckDB buffers). Times are measured
   in the page: from the click event's timestamp to ``main[data-state=ready]`` of that page
   (first render) and to each chart's ``data-rendered`` (Chart.js drawn). Then, still in
   that run, **30d**: overview, funnel and revenue switched (the Period picker's change
   event → drawn) from their default (24 hours, 7 days, 7 days) to the longest preset, 30
   days (all the generated data), a request the service has not answered before (the model
   page's default is 30 days already). Median over ``--runs``.

Prints one JSON object and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import analytics_funnel as funnel  # noqa: E402
from bench.analytics import with_carts  # noqa: E402
from bench.serving import PIPELINE, cli, serve_app  # noqa: E402
from dataintel.auth.permissions import Role  # noqa: E402
from dataintel.auth.service import ApiKeyService  # noqa: E402
from dataintel.settings import Settings  # noqa: E402
from dataintel.storage.analytics.decode import EVENT_SCHEMA  # noqa: E402
from dataintel.storage.metadata.engine import make_engine, make_sessionmaker  # noqa: E402

CHROMIUM = os.environ.get("DATAINTEL_CHROMIUM", "/usr/bin/chromium")
FLAGS = [  # as tests/dashboard/conftest.py
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NOW = "2024-01-31T00:00:00Z"
PAGES = ["overview", "funnel", "revenue", "model"]
WIDE = ["overview", "funnel", "revenue"]  # their default is shorter than 30 days
CHANNELS = ["websocket", "email", "sms", "push"]
ACTIONS = ["discount", "reminder", "urgency"]
MARKS = """
window.__marks = [];
new MutationObserver((records) => {
  const t = performance.now();
  for (const r of records) {
    const n = r.target;
    if (r.attributeName === "data-state" && n.dataset.state === "ready")
      window.__marks.push({ kind: "ready", page: n.dataset.page, t });
    if (r.attributeName === "data-rendered")
      window.__marks.push({ kind: "chart", name: n.dataset.testid.replace(/^chart-/, ""), t });
  }
}).observe(document, { subtree: true, attributes: true,
  attributeFilter: ["data-state", "data-rendered"] });
document.addEventListener("click", (e) => { window.__click = e.timeStamp; }, true);
document.addEventListener("change", (e) => { window.__click = e.timeStamp; }, true);
"""
ALL_DRAWN = """(page) => {
  if (!window.__marks.some((m) => m.kind === "ready" && m.page === page)) return false;
  const main = document.querySelector("main");
  if (main.dataset.state !== "ready" || main.dataset.page !== page) return false;
  return [...main.querySelectorAll("canvas[data-testid^=chart-]")]
    .every((c) => c.dataset.rendered === "true");
}"""


def platform_events(table: pa.Table, share: float, seed: int) -> pa.Table:
    """Predictions, interventions and holdouts for ``share`` of the carts in ``table``."""
    rng = np.random.default_rng(seed + 2)
    carts = table.filter(pc.is_valid(table.column("cart_id")))
    bought = pc.equal(carts.column("event"), "purchase")
    carts = carts.select(["cart_id", "user_id", "ts"]).append_column(
        "bought_at", pc.if_else(bought, carts.column("ts"), pa.scalar(None, carts["ts"].type))
    )
    per_cart = carts.group_by("cart_id").aggregate(
        [("ts", "min"), ("user_id", "min"), ("bought_at", "max")]
    )
    pick = rng.random(per_cart.num_rows) < share
    per_cart = per_cart.filter(pa.array(pick))
    n = per_cart.num_rows
    first = pc.cast(per_cart.column("ts_min"), pa.int64()).to_numpy()
    bought_at = pc.cast(per_cart.column("bought_at_max"), pa.int64())
    predicted_at = first + 1_000_000
    later = pc.fill_null(pc.greater(bought_at, pa.array(predicted_at)), False).to_numpy(
        zero_copy_only=False
    )
    version = np.where(rng.random(n) < 0.5, "v1", "v2")
    sharp = np.where(version == "v2", 5.0, 3.0)  # v2 separates the classes better
    probability = np.where(later, rng.beta(sharp, 2.0), rng.beta(2.0, sharp))
    held = rng.random(n) < 0.1
    channel = np.array(CHANNELS)[rng.integers(0, len(CHANNELS), n)]
    action = np.array(ACTIONS)[rng.integers(0, len(ACTIONS), n)]
    names, props = ["prediction"] * n, []
    for i in range(n):
        props.append(
            json.dumps(
                {"probability": round(float(probability[i]), 4), "model_version": version[i]}
            )
        )
    for i in range(n):
        names.append("holdout" if held[i] else "intervention")
        if held[i]:
            body = {"reason": "random 10%", "campaign": "bench", "model_version": version[i]}
        else:
            body = {
                "intervention_id": f"i{i}",
                "channel": channel[i],
                "action": action[i],
                "campaign": "bench",
                "status": "sent",
            }
        props.append(json.dumps(body))
    ts = pa.array(np.concatenate([predicted_at, predicted_at + 1_000_000]), pa.int64()).cast(
        pa.timestamp("us", tz="UTC")
    )
    cart = pa.concat_arrays([per_cart.column("cart_id").combine_chunks()] * 2)
    user = pa.concat_arrays([per_cart.column("user_id_min").combine_chunks()] * 2)
    offsets = np.arange(table.num_rows, table.num_rows + 2 * n, dtype=np.int64)
    return pa.table(
        {
            "project_id": pa.array(["bench"] * 2 * n),
            "pipeline_id": pa.array(["platform"] * 2 * n),
            "pipeline_version": pa.array(np.ones(2 * n, np.int64)),
            "event_id": pa.array([f"p{o}" for o in offsets], pa.string()),
            "event": pa.array(names, pa.string()),
            "ts": ts,
            "received_at": ts,
            "user_id": user,
            "cart_id": cart,
            "session_id": pa.nulls(2 * n, pa.string()),
            "properties": pa.array(props, pa.string()),
            "log_partition": pa.array(np.zeros(2 * n, np.int64)),
            "log_offset": pa.array(offsets),
        },
        schema=EVENT_SCHEMA,
    )


def build(data: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """The store and the project in ``data`` (reused when built there before)."""
    manifest = data / "bench-dashboard.json"
    if manifest.exists():
        return {**json.loads(manifest.read_text()), "reused": True}
    began = time.perf_counter()
    table = with_carts(funnel.generate(args.events, args.users, args.seed), args.seed)
    extra = platform_events(table, args.platform_share, args.seed)
    counts = pc.value_counts(extra.column("event")).to_pylist()
    table = pa.concat_tables([table, extra.cast(table.schema)])
    del extra
    data.mkdir(parents=True, exist_ok=True)
    funnel.load_duckdb(table, f"duckdb:///{data}/analytics.duckdb").close()
    (data / "p.yaml").write_text(PIPELINE)
    cli(env, "apply", str(data / "p.yaml"), "--deploy")
    out = {
        "events": table.num_rows,
        "generated_events": args.events,
        "platform_events": {c["values"]: c["counts"] for c in counts},
        "users": args.users,
        "seed": args.seed,
        "build_s": time.perf_counter() - began,
    }
    manifest.write_text(json.dumps(out, indent=2))
    return {**out, "reused": False}


def mint_key(data: Path) -> str:
    """An analyst key of the project, minted into the metadata store."""
    engine = make_engine(Settings(data_dir=data).resolved_metadata_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            return ApiKeyService(session).mint("bench", "bench", [Role.ANALYST], "bench").key
    finally:
        engine.dispose()


def visit(tab: Any, page: str, click: Any) -> dict[str, Any]:
    """Click (``click()``), wait for ``page`` and all its charts; ms from the click event."""
    tab.evaluate("window.__marks = []; window.__click = null")
    cache: list[str] = []

    def seen(response: Any) -> None:
        if "/v1/analytics/" in response.url:
            cache.append(response.headers.get("x-cache", "absent"))

    tab.on("response", seen)
    click()
    tab.wait_for_function(ALL_DRAWN, arg=page, timeout=600_000)
    tab.remove_listener("response", seen)
    marks = tab.evaluate("window.__marks")
    t0 = tab.evaluate("window.__click")
    ready = [m["t"] for m in marks if m["kind"] == "ready" and m["page"] == page]
    charts = {m["name"]: m["t"] - t0 for m in marks if m["kind"] == "chart"}
    if not charts:  # an empty state or an error: nothing was measured
        raise RuntimeError(f"{page}: no chart drawn: {tab.inner_text('main')[:300]}")
    return {"first_render_ms": ready[-1] - t0, "charts_ms": charts, "x_cache": cache}


def one_run(browser: Any, url: str, key: str) -> dict[str, dict[str, Any]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        tab = context.new_page()
        tab.clock.set_fixed_time(NOW)
        tab.add_init_script(MARKS)
        errors: list[str] = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(f"{url}/dashboard/")
        tab.get_by_label("API key or JWT").fill(key)
        out: dict[str, dict[str, Any]] = {"cold": {}, "warm": {}, "30d": {}}
        signin = tab.get_by_role("button", name="Sign in")
        out["cold"]["overview"] = visit(tab, "overview", signin.click)
        for temperature in ("cold", "warm"):
            for page in PAGES:
                if temperature == "cold" and page == "overview":
                    continue
                link = tab.locator(f"nav a[data-page={page}]")
                out[temperature][page] = visit(tab, page, link.click)
        for page in WIDE:  # the longest preset, never asked before in this service process
            tab.locator(f"nav a[data-page={page}]").click()
            tab.wait_for_function(ALL_DRAWN, arg=page, timeout=600_000)
            pick = tab.locator("#range")
            out["30d"][page] = visit(tab, page, lambda pick=pick: pick.select_option("30d"))
        if errors:
            raise RuntimeError(f"page errors: {errors}")
        return out
    finally:
        context.close()


def medians(runs: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for temperature in ("cold", "warm", "30d"):
        out[temperature] = {}
        for page in WIDE if temperature == "30d" else PAGES:
            got = [r[temperature][page] for r in runs]
            charts = sorted({name for g in got for name in g["charts_ms"]})
            out[temperature][page] = {
                "first_render_ms": statistics.median(g["first_render_ms"] for g in got),
                "charts_ms": {
                    c: statistics.median(g["charts_ms"][c] for g in got if c in g["charts_ms"])
                    for c in charts
                },
                "all_drawn_ms": statistics.median(
                    max([g["first_render_ms"], *g["charts_ms"].values()]) for g in got
                ),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--platform-share", type=float, default=0.05, help="of the carts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, help="build the store here, or reuse it")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results-dashboard.json")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        data = (args.data or Path(tmp) / "data").resolve()
        env = {
            **os.environ,
            "DATAINTEL_DATA_DIR": str(data),
            "DATAINTEL_RATE_LIMIT": "1000000/second",
        }
        out: dict[str, Any] = {"data": build(data, args, env), "browser_now": NOW}
        out["load"] = {"cpus": os.cpu_count(), "uptime_start": uptime}
        key = mint_key(data)
        runs = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            for _ in range(args.runs):
                server, port = serve_app(env)
                try:
                    runs.append(one_run(browser, f"http://127.0.0.1:{port}", key))
                finally:
                    server.stop()
            browser.close()
    out["runs"] = args.runs
    out["median"] = medians(runs)
    out["each_run"] = runs
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    out["load"]["uptime_end"] = uptime
    text = json.dumps(out, indent=2)
    print(text)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
