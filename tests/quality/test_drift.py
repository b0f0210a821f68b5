"""Drift: PSI against a brute-force computation and JS against scipy, bins from the
reference's quantiles (numpy); through the quality.drift job on DuckDB, a shifted
distribution crosses the PSI threshold (alert) and the same distribution does not, and
the day's statistics match pandas."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from scipy.spatial.distance import jensenshannon
from sqlalchemy import select

from dataintel.api.state import ANALYTICS
from dataintel.config.deployments.active import CONFIGS
from dataintel.model.drift import jensen_shannon, psi, quantile_edges, shares
from dataintel.quality.stats import FeatureMonitor
from dataintel.storage.metadata.monitoring_models import FeatureStatistics, QualityAlert
from tests.analytics.store_writer import write
from tests.conftest import Keys, apply_yaml

DAY = timedelta(days=1)
SLOT = datetime(2026, 3, 9, 0, 30, tzinfo=UTC)  # judges Mar 8
YAML = """
project: {id: shop, name: Shop}
pipelines: [{id: web, name: Web, events: [{name: purchase, fields: [{name: revenue, type: number}]}]}]
features: [{name: spend, pipeline_id: web, source_event: purchase, aggregation: SUM, field: revenue, windows: [7d]}]
"""  # noqa: E501


def test_psi_and_js_match_independent_references() -> None:
    rng = np.random.default_rng(7)
    reference, current = rng.normal(50, 10, 5000), rng.normal(55, 12, 3000)
    edges = quantile_edges(list(reference), 10)
    assert edges == pytest.approx(list(np.quantile(reference, np.arange(1, 10) / 10)))
    r, c = shares(list(reference), edges), shares(list(current), edges)
    # brute force: count each bin by its bounds
    bounds = [-math.inf, *edges, math.inf]
    brute_r = [
        ((reference > lo) & (reference <= hi)).mean() for lo, hi in itertools.pairwise(bounds)
    ]
    brute_c = [((current > lo) & (current <= hi)).mean() for lo, hi in itertools.pairwise(bounds)]
    assert r == pytest.approx(brute_r)
    assert c == pytest.approx(brute_c)
    expected_psi = sum((q - p) * math.log(q / p) for p, q in zip(brute_r, brute_c, strict=False))
    assert psi(r, c) == pytest.approx(expected_psi)
    assert jensen_shannon(r, c) == pytest.approx(jensenshannon(brute_r, brute_c, base=2))


@pytest.mark.parametrize(("shift", "status"), [(0.0, "ok"), (15.0, "critical")])
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_drift_job_alerts_on_a_shifted_distribution_only(
    app: Any, client: TestClient, keys: Keys, shift: float, status: str
) -> None:
    keys.project("shop")
    apply_yaml(app, YAML)
    store = app.state.dataintel.port(ANALYTICS)
    rng = np.random.default_rng(11)
    day = datetime(2026, 3, 8, tzinfo=UTC)
    rows = []
    for k in range(8):  # 7 reference days, then the judged day
        start = day - (7 - k) * DAY
        mean = 40.0 + (shift if k == 7 else 0.0)
        for i, value in enumerate(rng.normal(mean, 8.0, 300)):
            ts = start + timedelta(seconds=i * 200)
            props = {} if i % 50 == 0 else {"revenue": round(float(value), 2)}
            rows.append({"event": "purchase", "ts": ts, "user_id": f"u{i}", "properties": props})
    write(store, rows, "shop")
    configs = app.state.dataintel.port(CONFIGS)
    configs.invalidate()
    monitor = FeatureMonitor(app.state.dataintel.sessions, store, lambda p: configs.get(p).snapshot)
    assert monitor.run("shop", SLOT)["features"] == {"spend": status}
    with app.state.dataintel.sessions() as session:
        stats = session.get(FeatureStatistics, ("shop", "spend", day))
        assert stats is not None
        judged = pd.DataFrame([r for r in rows if r["ts"] >= day])
        values = judged.properties.map(lambda p: p.get("revenue")).dropna()
        assert stats.count == len(judged)
        assert stats.nulls == len(judged) - len(values)
        assert stats.mean == pytest.approx(values.mean())
        assert stats.quantiles["0.5"] == pytest.approx(np.quantile(values, 0.5))
        assert (stats.drift["psi"] >= 0.25) is (status == "critical")
        found = session.scalars(select(QualityAlert).where(QualityAlert.kind == "drift")).all()
        assert [a.severity for a in found] == ([] if status == "ok" else ["critical"])
    url = "/v1/quality/features/spend/statistics"
    read = client.get(url, headers=keys.headers(["analyst"], "shop"))
    assert read.status_code == 200, read.text
    (shown,) = read.json()["days"]
    assert shown["count"] == stats.count
    assert shown["drift"]["status"] == status
    keys.project("other")  # another project sees none of it
    assert client.get(url, headers=keys.headers(["admin"], "other")).json()["days"] == []
    assert client.get(url + "?limit=0", headers=keys.headers(["admin"], "other")).status_code == 422
