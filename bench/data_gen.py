"""One seeded data set for both sides of the serving and historical benchmarks.

Runs under the project's venv and under bench/.venv-feast alike (numpy + pyarrow only).

  python bench/data_gen.py --out DIR [--seed 4] [--users 10000] [--events 1000000]
                           [--anchor 2026-11-24T00:00:00Z | --anchor now]

writes, into DIR:
- events.parquet       the raw events (event_id, event, ts_us, user_id, sku, price), ts order,
                       over the 30 days before the anchor; what dataintel ingests;
- config.yaml          the dataintel project: pipeline `web` and the 4 features x 5 windows;
- user_values.parquet  the 20 values per user as of the anchor (exact window semantics of
                       docs/features: [floor((t - W)/g)*g, t]), what Feast materializes;
- history.parquet      one row per event: (user_id, event_timestamp, the 10 HISTORICAL values
                       as of that event), Feast's offline table for the point-in-time join;
- labels.parquet       the label rows (user_id, event_timestamp) of the historical benchmark;
- spec.json            the parameters, value names and request sets.

The 20 values: views (COUNT product_view), add_value (SUM cart_add.price), avg_add_price
(AVG cart_add.price), max_purchase (MAX purchase.price), each over 5m, 1h, 24h, 7d, 30d.
The 10 historical values: views_* and add_value_*.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 4
USERS = 10_000
EVENTS = 1_000_000
LABELS = 100_000
DAYS = 30
ANCHOR = "2026-11-24T00:00:00Z"
WINDOWS = {"5m": 300, "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
# (name, source event, aggregation, field)
FEATURES = [
    ("views", "product_view", "COUNT", None),
    ("add_value", "cart_add", "SUM", "price"),
    ("avg_add_price", "cart_add", "AVG", "price"),
    ("max_purchase", "purchase", "MAX", "price"),
]
HISTORICAL = ["views", "add_value"]
EVENT_MIX = {"product_view": 0.70, "cart_add": 0.25, "purchase": 0.05}
SKUS = 5_000
US = 1_000_000
SHIFT = 42  # key = user index << SHIFT | (ts_us - start); 30 days of µs < 2**42


def granularity(window_s: int) -> int:
    """g(W): the largest of 1 s, 1 min, 1 h, 1 d that is <= W/200 (1 s below 200 s)."""
    return max((g for g in (1, 60, 3600, 86400) if g <= window_s / 200), default=1)


def value_names(features: list[str] | None = None) -> list[str]:
    names = features or [f[0] for f in FEATURES]
    return [f"{n}_{w}" for n in names for w in WINDOWS]


def parse_anchor(text: str) -> int:
    if text == "now":
        return int(datetime.now(UTC).timestamp()) * US
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) * US


def generate(seed: int, users: int, events: int, anchor_us: int) -> dict[str, np.ndarray]:
    """The raw events, sorted by time. Activity is skewed (a few heavy users, a long tail)
    and timestamps are whole milliseconds."""
    rng = np.random.default_rng(seed)
    user = np.minimum((users * rng.random(events) ** 2).astype(np.int64), users - 1)
    start = anchor_us - DAYS * 86400 * US
    ts = start + rng.integers(0, DAYS * 86400 * 1000, events, endpoint=True) * 1000
    kinds = np.array(list(EVENT_MIX))
    kind = rng.choice(len(kinds), events, p=list(EVENT_MIX.values()))
    sku = rng.integers(0, SKUS, events)
    sku_price = np.round(np.exp(rng.normal(3.5, 0.8, SKUS)), 2) + 0.99
    price = sku_price[sku]
    price = np.where(kind == 2, np.round(price * rng.integers(1, 5, events), 2), price)
    order = np.argsort(ts, kind="stable")
    return {
        "event_id": np.char.add("e", np.arange(events).astype(str))[order],
        "event": kinds[kind][order],
        "ts_us": ts[order],
        "user": user[order],
        "sku": np.char.add("sku-", sku.astype(str))[order],
        "price": price[order],
        "start_us": np.array([start]),
    }


class Source:
    """The events of one type, sorted by (user, ts), with prefix sums for range queries."""

    def __init__(self, ev: dict[str, np.ndarray], event: str) -> None:
        mask = ev["event"] == event
        self.start = int(ev["start_us"][0])
        keys = (ev["user"][mask] << SHIFT) | (ev["ts_us"][mask] - self.start)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.values = ev["price"][mask][order]
        self.cum = np.concatenate([[0.0], np.cumsum(self.values)])

    def bounds(
        self, user: np.ndarray, t_us: np.ndarray, window_s: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Index range [lo, hi) of each query's events in [floor((t - W)/g)*g, t]."""
        g = granularity(window_s) * US
        low = np.maximum((t_us - window_s * US) // g * g - self.start, 0)
        high = np.maximum(t_us - self.start, -1)
        lo = np.searchsorted(self.keys, (user << SHIFT) | low, side="left")
        hi = np.searchsorted(self.keys, (user << SHIFT) | high, side="right")
        return lo, np.where(high < 0, lo, hi)

    def aggregate(self, agg: str, user: np.ndarray, t_us: np.ndarray, window_s: int) -> Any:
        lo, hi = self.bounds(user, t_us, window_s)
        count = hi - lo
        total = self.cum[hi] - self.cum[lo]
        if agg == "COUNT":
            return count.astype(np.float64)
        if agg == "SUM":
            return total
        if agg == "AVG":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(count > 0, total / np.maximum(count, 1), np.nan)
        if agg == "MAX":  # O(events in window) per query: fine for one row per user
            out = np.full(len(lo), np.nan)
            for i in np.flatnonzero(count):
                out[i] = self.values[lo[i] : hi[i]].max()
            return out
        raise ValueError(agg)


def values_at(
    ev: dict[str, np.ndarray], names: list[str], user: np.ndarray, t_us: np.ndarray
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    sources: dict[str, Source] = {}
    for name, event, agg, _field in FEATURES:
        if name not in names:
            continue
        src = sources.setdefault(event, Source(ev, event))
        for w, seconds in WINDOWS.items():
            out[f"{name}_{w}"] = src.aggregate(agg, user, t_us, seconds)
    return out


def _ts(us: np.ndarray) -> pa.Array:
    return pa.array(us.astype("datetime64[us]")).cast(pa.timestamp("us", tz="UTC"))


def _ids(user: np.ndarray) -> pa.Array:
    return pa.array(np.char.add("u", user.astype(str)))


def _float_column(values: np.ndarray) -> pa.Array:
    return pa.array(values, mask=np.isnan(values))


def config_yaml() -> str:
    lines = [
        "project: {id: bench, name: Bench}",
        "pipelines:",
        "  - id: web",
        "    name: Web",
        "    events:",
    ]
    for event in EVENT_MIX:
        lines.append(f"      - name: {event}")
        lines.append("        fields: [{name: sku, type: string, required: true},")
        lines.append("                 {name: price, type: number, required: true}]")
    lines.append("features:")
    windows = ", ".join(WINDOWS)
    for name, event, agg, field in FEATURES:
        extra = f", field: {field}" if field else ""
        lines.append(
            f"  - {{name: {name}, pipeline_id: web, source_event: {event}, "
            f"aggregation: {agg}{extra}, windows: [{windows}]}}"
        )
    return "\n".join(lines) + "\n"


def load_events(out: Path) -> dict[str, np.ndarray]:
    """The arrays of ``generate`` back from DIR/events.parquet (for reference values)."""
    import pyarrow.compute as pc

    table = pq.read_table(out / "events.parquet")
    spec = json.loads((out / "spec.json").read_text())
    user = pc.cast(pc.utf8_slice_codeunits(table["user_id"], 1), pa.int64())
    return {
        "event": table["event"].to_numpy(zero_copy_only=False).astype(str),
        "ts_us": table["ts_us"].to_numpy(),
        "user": user.to_numpy(),
        "price": table["price"].to_numpy(),
        "start_us": np.array([spec["anchor_us"] - DAYS * 86400 * US]),
    }


def ingest_batches(events_path: Path, size: int = 10_000) -> Any:
    """The events as dataintel ingest bodies (lists of envelopes), ``size`` per batch."""
    table = pq.read_table(events_path)
    for batch in table.to_batches(size):
        cols = batch.to_pydict()
        yield [
            {
                "event_id": cols["event_id"][i],
                "event": cols["event"][i],
                "timestamp": cols["ts_us"][i] // 1000,  # epoch milliseconds
                "user_id": cols["user_id"][i],
                "properties": {"sku": cols["sku"][i], "price": cols["price"][i]},
            }
            for i in range(batch.num_rows)
        ]


def write(
    out: Path,
    seed: int = SEED,
    users: int = USERS,
    events: int = EVENTS,
    labels: int = LABELS,
    anchor: str = ANCHOR,
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    anchor_us = parse_anchor(anchor)
    ev = generate(seed, users, events, anchor_us)
    pq.write_table(
        pa.table(
            {
                "event_id": ev["event_id"],
                "event": ev["event"],
                "ts_us": ev["ts_us"],
                "user_id": _ids(ev["user"]),
                "sku": ev["sku"],
                "price": ev["price"],
            }
        ),
        out / "events.parquet",
    )
    (out / "config.yaml").write_text(config_yaml())

    every = np.arange(users, dtype=np.int64)
    now = np.full(users, anchor_us, dtype=np.int64)
    serving = values_at(ev, [f[0] for f in FEATURES], every, now)
    table = {"user_id": _ids(every), "event_timestamp": _ts(now)}
    table.update({k: _float_column(v) for k, v in serving.items()})
    pq.write_table(pa.table(table), out / "user_values.parquet")

    hist = values_at(ev, HISTORICAL, ev["user"], ev["ts_us"])
    table = {"user_id": _ids(ev["user"]), "event_timestamp": _ts(ev["ts_us"])}
    table.update({k: _float_column(v) for k, v in hist.items()})
    pq.write_table(pa.table(table), out / "history.parquet", row_group_size=256_000)

    rng = np.random.default_rng(seed + 1)
    label_user = rng.integers(0, users, labels)
    label_ts = anchor_us - rng.integers(0, DAYS * 86400 * 1000, labels) * 1000
    pq.write_table(
        pa.table({"user_id": _ids(label_user), "event_timestamp": _ts(label_ts)}),
        out / "labels.parquet",
    )
    spec = {
        "seed": seed,
        "users": users,
        "events": events,
        "labels": labels,
        "anchor": datetime.fromtimestamp(anchor_us / US, UTC).isoformat(),
        "anchor_us": anchor_us,
        "values": value_names(),
        "historical_values": value_names(HISTORICAL),
        "granularity_s": {w: granularity(s) for w, s in WINDOWS.items()},
        "event_counts": {k: int((ev["event"] == k).sum()) for k in EVENT_MIX},
    }
    (out / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
    return spec


def request_users(seed: int, users: int, n: int, size: int) -> list[list[str]]:
    """``n`` requests of ``size`` user ids each, seeded: the same ids for both sides."""
    rng = np.random.default_rng(seed + 2 + size)
    picks = rng.integers(0, users, (n, size))
    return [[f"u{u}" for u in row] for row in picks.tolist()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--labels", type=int, default=LABELS)
    parser.add_argument("--anchor", default=ANCHOR, help="ISO time (UTC) or 'now'")
    args = parser.parse_args()
    spec = write(args.out, args.seed, args.users, args.events, args.labels, args.anchor)
    print(json.dumps(spec, indent=2))


if __name__ == "__main__":
    main()
