"""The property checks on real data: the complete 9-day Taobao histories of ~114 users
(../shared/data/real/taobao-userbehavior, see its SOURCE.md) streamed in event-time order
through the real sinks; at checkpoints every user's online values == offline SQL == the
brute-force reference."""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import apply_yaml
from tests.features.conftest import OnlineFactory
from tests.features.reference import reference_values
from tests.features.streams import Driver, stored
from tests.ingest.test_real_data import _file

from dataintel.config.deployments.active import CONFIGS
from dataintel.features.offline.compute import compute_offline
from dataintel.features.online.engine import FeatureEngine
from dataintel.storage.analytics.registry import open_analytics

CONFIG = """
project: {id: taobao, name: Taobao}
pipelines:
  - id: tb
    name: Taobao
    events:
"""
for _name in ("pv", "cart", "fav", "buy"):
    CONFIG += f"""      - name: {_name}
        fields:
          - {{name: item_id, type: string, required: true}}
          - {{name: category_id, type: string, required: true}}
"""
CONFIG += """features:
  - {name: views, pipeline_id: tb, source_event: pv, aggregation: COUNT,
     windows: [5m, 1h, 24h, 7d, lifetime]}
  - {name: items_viewed, pipeline_id: tb, source_event: pv, aggregation: COUNT_DISTINCT,
     field: item_id, windows: [1h, 24h, 7d]}
  - {name: last_category, pipeline_id: tb, source_event: pv, aggregation: LAST,
     field: category_id, windows: [24h, lifetime]}
  - {name: first_cart_item, pipeline_id: tb, source_event: cart, aggregation: FIRST,
     field: item_id, windows: [7d]}
  - {name: carts, pipeline_id: tb, source_event: cart, aggregation: COUNT,
     windows: [1h, 24h, 7d]}
  - {name: buys, pipeline_id: tb, source_event: buy, aggregation: COUNT,
     windows: [24h, 30d]}
"""
SECOND = 1_000_000


def histories() -> Iterator[dict[str, Any]]:
    path: Path = _file("taobao-userbehavior/UserBehavior_last10000rows_users_999477-999999.csv.gz")
    with gzip.open(path, "rt") as f:
        for i, line in enumerate(f):
            user, item, category, behavior, ts = line.strip().split(",")
            yield dict(
                stored(
                    "taobao",
                    f"tb-{i}",
                    int(ts) * SECOND,
                    user,
                    {"item_id": item, "category_id": category},
                    event=behavior,
                    pipeline="tb",
                )
            )


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)
    return bool(a == b)


def test_taobao_histories_online_equals_offline_equals_reference(
    app: Any, online_factory: OnlineFactory, tmp_path: Path
) -> None:
    apply_yaml(app, CONFIG)
    state = app.state.dataintel
    events = sorted(histories(), key=lambda e: (e["ts"], e["event_id"]))
    users = sorted({e["user_id"] for e in events})
    assert len(events) == 10_000
    assert len(users) > 100
    online = online_factory()
    analytics = open_analytics(f"duckdb:///{tmp_path / 'a.duckdb'}")
    clock = {"now": 0}
    engine = FeatureEngine(
        online, analytics, state.port(CONFIGS), state.sessions, lambda: clock["now"]
    )
    driver = Driver(engine, analytics, online, "taobao")
    specs = {f.name: f for f in state.port(CONFIGS).get("taobao").snapshot.features}
    checkpoints = {len(events) * k // 5 for k in range(1, 6)}
    compared = 0
    for start in range(0, len(events), 400):
        chunk = events[start : start + 400]
        clock["now"] = chunk[-1]["ts"]
        driver.apply(driver.append(chunk), clock["now"])  # type: ignore[arg-type]
        done = start + len(chunk)
        if not any(start < c <= done for c in checkpoints):
            continue
        t = clock["now"]
        seen = events[:done]
        got = driver.online_values("user_id", users, t)
        offline = compute_offline(analytics, "taobao", list(specs.values()), "user_id", users, t)
        for user in users:
            for spec in specs.values():
                want = reference_values(seen, spec, "user_id", user, t)
                for name, value in want.items():
                    assert same(value, got[user][name]), (user, name, t, value, got[user][name])
                    assert same(value, offline[user][name]), (user, name, t, value)
                    compared += 1
    engine.close()
    analytics.close()
    assert compared == 5 * len(users) * 16  # 16 values per user
