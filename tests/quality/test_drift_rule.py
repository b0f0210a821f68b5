"""The drift rule on the real REES46 slice, on DuckDB and chDB: the prices of views after
01:25 against the views before (the reference window), binned at the reference's deciles.
The same distribution passes; prices tripled after 01:25 cross PSI 0.25 and fail. PSI and
the Jensen-Shannon distance equal a reference computed here with numpy and scipy, on both
engines (the edges are read as exact ranks, not through the engines' differing quantile
functions)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from dataintel.model.quality import QualityConfig
from dataintel.quality.rules_run import RuleRunner
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from tests.analytics.store_writer import write
from tests.quality.test_rules_engines import REES46, SNAPSHOT, _rees46_rows

SPLIT = datetime(2019, 10, 1, 1, 25, tzinfo=UTC)
END = datetime(2019, 10, 1, 3, tzinfo=UTC)
RULE = {
    "name": "price_drift",
    "type": "drift",
    "dataset": "view",
    "column": "properties.price",
    "reference_days": 1,
    "threshold": 0.25,
}


def _tripled() -> Iterator[dict[str, Any]]:
    for row in _rees46_rows():
        if row["ts"] >= SPLIT:
            row["properties"]["price"] *= 3
        yield row


@pytest.fixture(scope="module", params=["duckdb", "chdb"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    where = tmp_path_factory.mktemp(f"drift-{request.param}")
    url = f"duckdb:///{where}/a.duckdb" if request.param == "duckdb" else f"chdb:///{where}/ch"
    found = open_analytics(url)
    write(found, _rees46_rows(), project_id="same")
    write(found, _tripled(), project_id="shifted")
    yield found
    found.close()


@pytest.fixture(scope="module")
def views() -> pd.DataFrame:
    frame = pd.read_csv(REES46, dtype=str, keep_default_na=False)
    frame = frame[frame["event_type"] == "view"].copy()
    frame["ts"] = pd.to_datetime(frame["event_time"].str.replace(" UTC", ""), utc=True)
    frame["price"] = frame["price"].astype(float)
    return frame


def expected(views: pd.DataFrame, factor: float) -> dict[str, float]:
    ref = views[views["ts"] < SPLIT]["price"].to_numpy()
    cur = views[(views["ts"] >= SPLIT) & (views["ts"] < END)]["price"].to_numpy() * factor
    edges = np.unique(np.quantile(ref, [k / 10 for k in range(1, 10)]))
    r = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1)
    c = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1)
    rs, cs = r / r.sum(), c / c.sum()
    floor_r, floor_c = np.maximum(rs, 1e-4), np.maximum(cs, 1e-4)
    psi = float(np.sum((floor_c - floor_r) * np.log(floor_c / floor_r)))
    return {"psi": psi, "js": float(jensenshannon(rs, cs, base=2))}


@pytest.mark.parametrize(
    ("project", "factor", "status"), [("same", 1, "pass"), ("shifted", 3, "fail")]
)
def test_drift_rule_equals_numpy_and_scipy(
    store: AnalyticsStore,
    views: pd.DataFrame,
    project: str,
    factor: float,
    status: str,
) -> None:
    config = QualityConfig.model_validate({"rules": [RULE]})
    runner = RuleRunner(store, project, SNAPSHOT, lambda _data: 0)
    (outcome,) = runner.run(config.rules, SPLIT, END)
    assert outcome.status == status, outcome.detail
    want = expected(views, factor)
    tolerance = {"rel": 1e-9}
    assert outcome.observed == pytest.approx(want["psi"], **tolerance)
    rounded = {"abs": 1e-6}  # the detail keeps 6 decimals
    assert outcome.detail["psi"] == pytest.approx(want["psi"], **rounded)
    assert outcome.detail["js"] == pytest.approx(want["js"], **rounded)
    assert (want["psi"] < 0.1) is (factor == 1)  # the same distribution: not even a warning
    assert not math.isnan(outcome.observed or 0.0)
