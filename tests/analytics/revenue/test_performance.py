"""Model performance: the metrics equal scikit-learn's (to 1e-9) on random and on
real-derived predictions (REES46 carts), and GET /v1/analytics/performance through HTTP on
both engines equals scikit-learn on pairs joined by brute force in Python."""

from __future__ import annotations

import csv
import gzip
import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from dataintel.analytics import performance_metrics as m
from tests.analytics.revenue.conftest import Shop, at, event, iso
from tests.ingest.test_real_data import _file

URL = "/v1/analytics/performance"
REES46 = "rees46-multicategory/2019-Oct_head_20191001T0000-0250Z.csv.gz"


def assert_like_sklearn(y: np.ndarray, p: np.ndarray) -> None:
    y = y.astype(np.int64)
    assert m.brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-9)
    assert m.log_loss(y, p) == pytest.approx(log_loss(y, p, labels=[0, 1]), abs=1e-9)
    if 0 < y.sum() < len(y):
        assert m.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-9)
        fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
        points = m.roc_curve(y, p, max_points=10_000)
        assert [r.fpr for r in points] == pytest.approx(list(fpr), abs=1e-12)
        assert [r.tpr for r in points] == pytest.approx(list(tpr), abs=1e-12)
        assert [r.threshold for r in points[1:]] == pytest.approx(list(thresholds[1:]))
        short = m.roc_curve(y, p, max_points=20)  # fewer points, all on the exact curve
        exact = set(zip(fpr.tolist(), tpr.tolist(), strict=True))
        assert len(short) == min(20, len(fpr))
        assert {(r.fpr, r.tpr) for r in short} <= exact
        assert m.average_precision(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-9)
    for strategy in ("uniform", "quantile"):
        bins = m.calibration(y, p, 10, strategy)  # type: ignore[arg-type]
        true, pred = calibration_curve(y, p, n_bins=10, strategy=strategy)
        assert [b.observed_rate for b in bins] == pytest.approx(list(true), abs=1e-9)
        assert [b.mean_predicted for b in bins] == pytest.approx(list(pred), abs=1e-9)
    order = np.argsort(-p, kind="mergesort")
    for k in (1.0, 12.5, 50.0, 100.0):
        count = math.ceil(len(y) * k / 100)
        chosen = np.zeros(len(y), dtype=np.int64)
        chosen[order[:count]] = 1
        [top] = m.top_k(y, p, [k])
        assert top.count == count
        assert top.precision == pytest.approx(precision_score(y, chosen, zero_division=0))
        if y.sum():
            assert top.recall == pytest.approx(recall_score(y, chosen))
            assert top.lift == pytest.approx(top.precision / y.mean())


def test_metrics_equal_sklearn_on_random_predictions() -> None:
    rng = np.random.default_rng(11)
    for trial in range(50):
        n = int(rng.integers(2, 500))
        p = rng.random(n)
        if trial % 3 == 0:
            p = np.round(p, 1)  # many ties
        if trial % 5 == 0:
            p[:2], p[2:4] = 0.0, 1.0  # the clipping of log loss
        y = (rng.random(n) < p).astype(np.int64)
        assert_like_sklearn(y, p)
    assert m.roc_auc(np.array([1, 1]), np.array([0.2, 0.9])) is None
    assert m.average_precision(np.array([0, 0]), np.array([0.2, 0.9])) is None


def rees46_carts() -> list[tuple[str, datetime, float, int, datetime | None]]:
    """Per session with a cart event: its first cart time, a heuristic probability of
    purchase (views and price before the cart), and the session's first purchase after it."""
    views: dict[str, int] = defaultdict(int)
    first_cart: dict[str, tuple[datetime, float]] = {}
    bought: dict[str, datetime] = {}
    with gzip.open(_file(REES46), "rt", newline="") as f:
        for row in csv.DictReader(f):
            when = datetime.fromisoformat(row["event_time"].replace(" UTC", "+00:00"))
            session = row["user_session"]
            if row["event_type"] == "view":
                views[session] += 1
            elif row["event_type"] == "cart" and session not in first_cart:
                first_cart[session] = (when, float(row["price"]))
            elif row["event_type"] == "purchase" and session in first_cart:
                bought.setdefault(session, when)
    carts = []
    for session, (when, price) in first_cart.items():
        score = -1.0 + 0.25 * views[session] - 0.002 * price
        probability = round(1 / (1 + math.exp(-score)), 3)
        label = int(session in bought and bought[session] > when)
        carts.append((session, when, probability, label, bought.get(session)))
    return carts


def test_metrics_equal_sklearn_on_real_derived_predictions() -> None:
    carts = rees46_carts()
    y = np.array([c[3] for c in carts])
    p = np.array([c[2] for c in carts])
    assert len(y) > 100
    assert 0 < y.sum() < len(y)
    assert_like_sklearn(y, p)


def test_performance_through_http_equals_sklearn(shop: Shop) -> None:
    """REES46 carts as predictions of two model versions (v2 sharper), purchases as the
    outcomes, a 1 h horizon: every metric equals scikit-learn on the brute-force join."""
    carts = rees46_carts()
    events: list[dict[str, Any]] = []
    expected: dict[str, tuple[list[int], list[float]]] = {"v1": ([], []), "v2": ([], [])}
    horizon = timedelta(hours=1)
    for i, (session, when, probability, _label, bought) in enumerate(carts):
        version = "v1" if i % 3 else "v2"
        if version == "v2":
            probability = round(min(1.0, probability * 1.5), 3)
        events.append(
            event(
                "prediction",
                session,
                when,
                probability=probability,
                model_version=version,
                confidence=0.5,
                recommended_action="reminder",
            )
        )
        if bought is not None:
            events.append(event("purchase", session, bought, order_id=session, revenue=1))
        label = int(bought is not None and timedelta(0) < bought - when <= horizon)
        expected[version][0].append(label)
        expected[version][1].append(probability)
    bad = event("prediction", "nope", carts[0][1], probability=1.5, model_version="v1")
    shop.send([*events, bad])
    span = {"from": "2019-10-01T00:00:00Z", "to": "2019-10-02T00:00:00Z"}
    body = shop.get(URL, horizon="1h", interval="hour", top=[5, 20], **span)
    assert [mv["model_version"] for mv in body["models"]] == ["v1", "v2"]
    for mv in body["models"]:
        y = np.array(expected[mv["model_version"]][0])
        p = np.array(expected[mv["model_version"]][1])
        assert (mv["predictions"], mv["positives"], mv["pending"]) == (len(y), y.sum(), 0)
        assert mv["invalid"] == (1 if mv["model_version"] == "v1" else 0)
        assert mv["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-9)
        fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
        assert [r["fpr"] for r in mv["roc"]] == pytest.approx(list(fpr))
        assert [r["tpr"] for r in mv["roc"]] == pytest.approx(list(tpr))
        assert mv["pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-9)
        assert mv["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-9)
        assert mv["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-9)
        true, pred = calibration_curve(y, p, n_bins=10)
        assert [b["observed_rate"] for b in mv["calibration"]] == pytest.approx(list(true))
        assert [b["mean_predicted"] for b in mv["calibration"]] == pytest.approx(list(pred))
        assert [t["percent"] for t in mv["top"]] == [5, 20]
        assert sum(s["predictions"] for s in mv["series"]) == len(y)
        assert [s["start"] for s in mv["series"]] == sorted(s["start"] for s in mv["series"])
        assert mv["series"][0]["start"] == "2019-10-01T00:00:00Z"
    only = shop.get(URL, horizon="1h", model_version="v2", **span)
    assert [mv["model_version"] for mv in only["models"]] == ["v2"]


def test_pending_and_interval_series(shop: Shop) -> None:
    """A prediction whose horizon has not ended is pending, not a negative; weekly series
    start on Mondays."""
    now = datetime.now().astimezone()
    shop.send(
        [
            event("prediction", "a", at(0), probability=0.9, model_version="m"),
            event("purchase", "a", at(2), order_id="a", revenue=5),
            event("prediction", "b", at(30), probability=0.2, model_version="m"),
            event("prediction", "c", at(24 * 8), probability=0.4, model_version="m"),
            event("prediction", "d", now - timedelta(hours=1), probability=0.7, model_version="m"),
        ]
    )
    body = shop.get(URL, interval="week", **{"from": iso(at(-1)), "to": iso(now)})
    [mv] = body["models"]
    assert (mv["predictions"], mv["positives"], mv["pending"]) == (3, 1, 1)
    assert mv["roc_auc"] == 1.0
    assert [s["start"] for s in mv["series"]] == ["2024-03-04T00:00:00Z", "2024-03-11T00:00:00Z"]
    assert [s["predictions"] for s in mv["series"]] == [2, 1]
    assert mv["series"][1]["roc_auc"] is None  # one class only
