"""The weight invariants of every attribution model, on random conversions and touchpoints
(hypothesis), on both engines: weights ≥ 0 and summing to 1 per conversion, equal to a
brute-force Python reference, so the attributed revenue over all touchpoints (per channel,
action or campaign) equals the revenue of attributed conversions."""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataintel.analytics.attribution_sql import (
    Model,
    Scope,
    by_touch_query,
    totals_query,
    weights_query,
)
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.registry import open_analytics
from tests.analytics.revenue.conftest import T0
from tests.storage.contract.test_analytics import ENGINES, entry, url

SECOND = 1_000_000
T0_US = int(T0.timestamp()) * SECOND
_offsets = itertools.count()
EXAMPLES = {"duckdb": 40, "chdb": 5}


@pytest.fixture(scope="module", params=ENGINES)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, AnalyticsStore]]:
    where: Path = tmp_path_factory.mktemp(f"attr-{request.param}")
    opened = open_analytics(url(request.param, where))
    yield request.param, opened
    opened.close()


touch = st.tuples(
    st.integers(0, 2),  # cart
    st.integers(0, 20 * 3600),  # seconds after T0
    st.sampled_from(["email", "sms", "push", None]),
    st.sampled_from(["reminder", "discount"]),
    st.booleans(),  # failed
)
conversion = st.tuples(
    st.integers(0, 3),  # cart (3: never touched)
    st.integers(0, 24 * 3600),
    st.floats(0, 1000, allow_nan=False).map(lambda r: round(r, 2)),
)


def _store_events(
    store: AnalyticsStore, project: str, touches: list[Any], convs: list[Any]
) -> None:
    entries = []
    for i, (cart, sec, channel, action, failed) in enumerate(touches):
        props: dict[str, Any] = {"intervention_id": f"I{i}", "action": action}
        props["status"] = "failed" if failed else "sent"
        if channel:
            props["channel"] = channel
        entries.append(
            entry(
                0,
                next(_offsets),
                f"{project}-t{i}",
                project_id=project,
                event="intervention",
                cart_id=f"c{cart}",
                ts=T0_US + sec * SECOND,
                properties=props,
            )
        )
    for i, (cart, sec, revenue) in enumerate(convs):
        entries.append(
            entry(
                0,
                next(_offsets),
                f"{project}-p{i}",
                project_id=project,
                event="purchase",
                cart_id=f"c{cart}",
                ts=T0_US + sec * SECOND,
                properties={"order_id": f"o{i}", "revenue": revenue},
            )
        )
    store.apply(entries)


def reference(
    touches: list[Any], convs: list[Any], model: Model, window_s: int, half_life_s: int
) -> dict[tuple[str, str], float]:
    """Brute force: the weight of every (conversion, touch) pair."""
    out: dict[tuple[str, str], float] = {}
    for ci, (cart, csec, _revenue) in enumerate(convs):
        eligible = sorted(
            (sec, f"I{i}")
            for i, (tcart, sec, _c, _a, failed) in enumerate(touches)
            if tcart == cart and not failed and 0 <= csec - sec <= window_s
        )
        n = len(eligible)
        for r, (_sec, iid) in enumerate(eligible, start=1):
            if model is Model.LAST_TOUCH:
                w = 1.0 if r == n else 0.0
            elif model is Model.FIRST_TOUCH:
                w = 1.0 if r == 1 else 0.0
            elif model is Model.LINEAR:
                w = 1.0 / n
            elif model is Model.POSITION_BASED:
                w = 1.0 if n == 1 else 0.5 if n == 2 else 0.4 if r in (1, n) else 0.2 / (n - 2)
            else:
                ages = [csec - s for s, _ in eligible]
                raw = [math.exp(-math.log(2) * (a - min(ages)) / half_life_s) for a in ages]
                w = raw[r - 1] / sum(raw)
            out[(f"{'p'}{ci}", iid)] = w
    return out


@pytest.mark.parametrize("model", list(Model))
def test_weights_are_a_distribution_per_conversion(
    store: tuple[str, AnalyticsStore], model: Model
) -> None:
    engine, analytics = store

    @settings(
        max_examples=EXAMPLES[engine] // len(Model) + 4,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        touches=st.lists(touch, max_size=12),
        convs=st.lists(conversion, min_size=1, max_size=6),
        window_h=st.integers(1, 30),
        half_life_h=st.integers(1, 48),
    )
    def check(touches: list[Any], convs: list[Any], window_h: int, half_life_h: int) -> None:
        project = f"p{uuid.uuid4().hex[:10]}"
        _store_events(analytics, project, touches, convs)
        scope = Scope(
            project,
            T0_US,
            T0_US + 2 * 86400 * SECOND,
            "purchase",
            "revenue",
            window_h * 3600 * SECOND,
            model,
            half_life_h * 3600 * SECOND,
        )
        rows = analytics.sql(*weights_query(scope)).to_pylist()
        expected = reference(touches, convs, model, window_h * 3600, half_life_h * 3600)
        got = {(r["conv_id"].split("-")[1], r["iid"]): r["w"] for r in rows}
        assert got.keys() == expected.keys()
        for key, w in got.items():
            assert w >= 0.0
            assert w == pytest.approx(expected[key], abs=1e-12)
        per_conversion: dict[str, float] = {}
        for (conv, _), w in got.items():
            per_conversion[conv] = per_conversion.get(conv, 0.0) + w
        assert all(total == pytest.approx(1.0, abs=1e-12) for total in per_conversion.values())

        [totals] = analytics.sql(*totals_query(scope)).to_pylist()
        revenue = {f"p{i}": rev for i, (_c, _s, rev) in enumerate(convs)}
        assert totals["n_conv"] == len(convs)
        assert totals["n_attributed"] == len(per_conversion)
        assert totals["attributed_sum"] == pytest.approx(
            sum(revenue[c] for c in per_conversion), abs=1e-6
        )
        dims = analytics.sql(*by_touch_query(scope)).to_pylist()
        for dim in ("channel", "action", "campaign"):
            mine = [d for d in dims if d["dim"] == dim]
            assert sum(d["revenue_sum"] for d in mine) == pytest.approx(
                totals["attributed_sum"], abs=1e-6
            )
            assert sum(d["w_sum"] for d in mine) == pytest.approx(len(per_conversion), abs=1e-9)

    check()
