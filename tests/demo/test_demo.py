"""The demo data: real sessions spread over a week, and the simulated neighbours on them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
from sklearn.linear_model import LogisticRegression

from dataintel.auth.permissions import Role
from dataintel.config.declarative.demo_events import demo_events
from dataintel.config.declarative.spec import demo as demo_spec
from dataintel.demo.http import Api
from dataintel.demo.logistic import fit
from dataintel.demo.neighbours import ABANDON_AFTER, HORIZON, carts_of, simulate
from dataintel.model.windows import parse_window
from tests.conftest import Keys, apply_yaml


def test_the_logistic_model_equals_scikit_learns() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 4)) * [1, 10, 0.1, 3] + [0, 5, 1, -2]
    y = (rng.random(400) < 1 / (1 + np.exp(-(x[:, 0] - 0.1 * x[:, 1])))).astype(float)
    model = fit(x, y, l2=2.0)
    standard = (x - x.mean(axis=0)) / x.std(axis=0)
    reference = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(standard, y)
    np.testing.assert_allclose(model.weights[1:], reference.coef_[0], atol=1e-6)
    np.testing.assert_allclose(model.weights[0], reference.intercept_[0], atol=1e-6)
    np.testing.assert_allclose(model.predict(x), reference.predict_proba(standard)[:, 1], atol=1e-6)


def test_the_demo_replays_whole_real_sessions_over_the_last_week() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    events = demo_events(now)
    assert len(events) == 17_434
    times = [datetime.fromisoformat(e["timestamp"]) for e in events]
    assert times == sorted(times)
    assert now - timedelta(days=7) <= times[0]
    assert times[-1] < now
    sessions: dict[str, list[datetime]] = {}
    for e, t in zip(events, times, strict=True):
        sessions.setdefault(e["session_id"], []).append(t)
    assert len(sessions) == 5_066
    assert max(max(s) - min(s) for s in sessions.values()) < timedelta(hours=3)
    assert {t.date() for t in times} >= {(now - timedelta(days=d)).date() for d in range(1, 7)}


def test_the_simulation_constants_are_the_demo_projects_settings() -> None:
    settings = demo_spec().analytics
    assert parse_window(settings.abandon_after).seconds == ABANDON_AFTER.total_seconds()
    assert parse_window(settings.outcome_horizon).seconds == HORIZON.total_seconds()


def test_the_neighbours_score_every_cart_and_hold_out_some(
    live: str,
    app: Any,
    keys: Keys,
) -> None:
    result = apply_yaml(app, demo_spec_text())
    key = keys.mint([Role.ADMIN], result.project_id)
    now = datetime.now(UTC)
    events = demo_events(now)
    carts = {e["session_id"] for e in events if e["event"] == "cart_add"}
    shop = [e for e in events if e["session_id"] in carts]
    api = Api(live, key)
    for i in range(0, len(shop), 2000):
        api.call(
            "POST", f"/ingest/{result.project_id}/web/batch?wait=processed", shop[i : i + 2000]
        )
    done = simulate(api, shop, result.project_id, now)
    expected = carts_of(shop)
    assert done.predictions == len(expected) == len(carts)
    abandoned = [c for c in expected if c.abandoned_at() is not None]
    assert 0 < done.holdouts < len(abandoned) * 0.3
    assert done.interventions + done.holdouts <= len(abandoned)
    with httpx.Client(base_url=live, timeout=60) as http:
        got = http.get(
            "/v1/export/events",
            params={"event": "prediction", "format": "ndjson", "limit": 10_000},
            headers={"Authorization": f"Bearer {key}"},
        )
    rows = [json.loads(line) for line in got.text.splitlines() if line]
    assert len(rows) == done.predictions
    probabilities = [r["properties"]["probability"] for r in rows]
    assert all(0 <= p <= 1 for p in probabilities)
    assert len(set(probabilities)) > 10  # a model, not a constant
    assert {r["properties"]["model_version"] for r in rows} == {"demo-lr-1", "demo-lr-2"}


def demo_spec_text() -> str:
    from importlib import resources

    return (resources.files("dataintel.config.declarative") / "demo-shop.yaml").read_text()
