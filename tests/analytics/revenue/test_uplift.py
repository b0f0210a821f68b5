"""The holdout uplift and its intervals: the statistics against scipy and direct formulas,
their coverage over seeds on data with a known true effect, and the whole comparison
through HTTP on both engines against a direct computation on the generated carts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from dataintel.analytics.uplift import Sums, compare
from dataintel.analytics.uplift_stats import newcombe, t_quantile, welch, wilson
from tests.analytics.revenue.conftest import Shop, at, event, iso

Z = stats.norm.ppf(0.975)


def direct_newcombe(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Newcombe (1998) method 10 from scipy's Wilson intervals."""
    ci1 = stats.binomtest(x1, n1).proportion_ci(0.95, method="wilson")
    ci2 = stats.binomtest(x2, n2).proportion_ci(0.95, method="wilson")
    p1, p2 = x1 / n1, x2 / n2
    low = p1 - p2 - math.hypot(p1 - ci1.low, ci2.high - p2)
    high = p1 - p2 + math.hypot(ci1.high - p1, p2 - ci2.low)
    return low, high


def test_t_quantile_equals_scipy() -> None:
    for df in (1, 1.5, 2, 3.7, 10, 29.3, 250, 12_345.6, 1e5, 3e6):
        for p in (0.5, 0.6, 0.9, 0.975, 0.999, 0.025):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), abs=1e-9)


def test_wilson_and_newcombe_equal_the_direct_computation() -> None:
    for x1, n1, x2, n2 in [(30, 100, 20, 100), (0, 10, 5, 10), (10, 10, 0, 7), (1, 3, 2, 900)]:
        ci = wilson(x1, n1, Z)
        assert ci is not None
        ref = stats.binomtest(x1, n1).proportion_ci(0.95, method="wilson")
        assert (ci.low, ci.high) == pytest.approx((ref.low, ref.high), abs=1e-12)
        diff = newcombe(x1, n1, x2, n2)
        assert diff is not None
        assert (diff.low, diff.high) == pytest.approx(direct_newcombe(x1, n1, x2, n2), abs=1e-12)
    assert newcombe(1, 0, 1, 2) is None


def test_welch_equals_scipy() -> None:
    rng = np.random.default_rng(7)
    for n1, n2 in [(2, 2), (5, 40), (300, 280)]:
        a, b = rng.exponential(30, n1), rng.exponential(20, n2) + rng.random(n2)
        got = welch(a.mean(), a.var(ddof=1), n1, b.mean(), b.var(ddof=1), n2)
        ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
        assert got.interval is not None
        assert (got.interval.low, got.interval.high) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert welch(1.0, 0.0, 1, 2.0, 1.0, 5).interval is None


def simulate(rng: np.random.Generator, n: int, rate: float) -> tuple[Sums, np.ndarray]:
    bought = rng.random(n) < rate
    revenue = np.where(bought, rng.lognormal(3.5, 0.6, n), 0.0)
    sums = Sums(n, int(bought.sum()), float(revenue.sum()), float((revenue**2).sum()))
    return sums, revenue


def test_intervals_cover_the_true_effect_at_their_level() -> None:
    """300 data sets with a known effect: recovery 30 % vs 20 %, revenue per recovered cart
    lognormal(3.5, 0.6): both 95 % intervals cover the truth in 92 %-98 % of them."""
    mean_order = math.exp(3.5 + 0.6**2 / 2)
    true_rate, true_revenue = 0.10, 0.10 * mean_order
    rate_hits = revenue_hits = 0
    runs = 300
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        treated, _ = simulate(rng, 400, 0.30)
        control, _ = simulate(rng, 350, 0.20)
        result = compare(treated, control)
        rate, rev = result.recovery_rate_difference, result.revenue_per_cart_difference
        assert rate.low is not None
        assert rate.high is not None
        assert rev.low is not None
        assert rev.high is not None
        rate_hits += rate.low <= true_rate <= rate.high
        revenue_hits += rev.low <= true_revenue <= rev.high
    assert 0.92 <= rate_hits / runs <= 0.98
    assert 0.92 <= revenue_hits / runs <= 0.98


def test_uplift_through_http_equals_the_direct_computation(shop: Shop) -> None:
    """Generated carts (seed 3): treated (email or sms, some failed deliveries) recover at
    35 %, held-out ones at 20 %; a cart both treated and held out is excluded."""
    rng = np.random.default_rng(3)
    events: list[dict[str, Any]] = []
    carts: dict[str, list[float]] = {"treated": [], "email": [], "sms": [], "control": []}
    for i in range(500):
        treated = i % 2 == 0
        cart, hour = f"c{i}", (i % 100) * 0.5
        if treated:
            channel = "email" if i % 4 == 0 else "sms"
            status = "failed" if i % 10 == 0 else "sent"
            events.append(
                event(
                    "intervention",
                    cart,
                    at(hour),
                    intervention_id=f"I{i}",
                    channel=channel,
                    action="reminder",
                    status=status,
                )
            )
        else:
            events.append(event("holdout", cart, at(hour)))
        revenue = 0.0
        if rng.random() < (0.35 if treated else 0.20):
            revenue = round(float(rng.lognormal(3.5, 0.6)), 2)
            events.append(event("purchase", cart, at(hour + 24), order_id=f"o{i}", revenue=revenue))
        carts["treated" if treated else "control"].append(revenue)
        if treated:
            carts[channel].append(revenue)
    # Not counted: bought after the 7d horizon; both groups; outside [from, to).
    events.append(event("holdout", "late", at(1)))
    events.append(event("purchase", "late", at(1 + 8 * 24), order_id="late", revenue=500))
    events.append(event("holdout", "both", at(1)))
    events.append(event("intervention", "both", at(2), intervention_id="B", channel="sms"))
    events.append(event("holdout", "early", at(-48)))
    carts["control"].append(0.0)  # "late": a control cart not recovered in the horizon
    shop.send(events)

    body = shop.get("/v1/analytics/revenue", **{"from": iso(at(0)), "to": iso(at(24 * 3))})
    up = body["incremental"]
    assert (up["rate_method"], up["revenue_method"]) == ("newcombe_hybrid_score", "welch_t")
    assert (up["horizon"], up["confidence"], up["excluded_carts"]) == ("7d", 0.95, 1)
    assert up["pending_carts"] == 0
    t, c = np.array(carts["treated"]), np.array(carts["control"])
    check_arm(up["treatment"], t)
    check_arm(up["control"], c)
    check_comparison(up["uplift"], t, c)
    assert [a["value"] for a in up["by_channel"]] == ["email", "sms"]
    for arm in up["by_channel"]:
        mine = np.array(carts[arm["value"]])
        check_arm(arm["treatment"], mine)
        check_comparison(arm["uplift"], mine, c)
    assert [a["value"] for a in up["by_action"]] == ["reminder"]
    # The known effect, +15 points of recovery, is inside the interval.
    rate = up["uplift"]["recovery_rate_difference"]
    assert rate["low"] <= 0.15 <= rate["high"]


def check_arm(arm: dict[str, Any], revenue: np.ndarray) -> None:
    recovered = int((revenue > 0).sum())
    assert (arm["carts"], arm["recovered"]) == (len(revenue), recovered)
    assert arm["recovery_rate"] == pytest.approx(recovered / len(revenue), abs=1e-12)
    ref = stats.binomtest(recovered, len(revenue)).proportion_ci(0.95, method="wilson")
    assert (arm["recovery_rate_low"], arm["recovery_rate_high"]) == pytest.approx(
        (ref.low, ref.high), abs=1e-9
    )
    assert arm["revenue_per_cart"] == pytest.approx(revenue.mean(), abs=1e-9)


def check_comparison(cmp: dict[str, Any], t: np.ndarray, c: np.ndarray) -> None:
    xt, xc = int((t > 0).sum()), int((c > 0).sum())
    rate = cmp["recovery_rate_difference"]
    assert rate["estimate"] == pytest.approx(xt / len(t) - xc / len(c), abs=1e-12)
    assert (rate["low"], rate["high"]) == pytest.approx(
        direct_newcombe(xt, len(t), xc, len(c)), abs=1e-9
    )
    rev = cmp["revenue_per_cart_difference"]
    ref = stats.ttest_ind(t, c, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert rev["estimate"] == pytest.approx(t.mean() - c.mean(), abs=1e-9)
    assert (rev["low"], rev["high"]) == pytest.approx((ci.low, ci.high), abs=1e-7)
    assert cmp["welch_df"] == pytest.approx(ref.df, rel=1e-9)
    assert cmp["incremental_revenue"]["estimate"] == pytest.approx(
        (t.mean() - c.mean()) * len(t), abs=1e-6
    )
    assert cmp["incremental_conversions"]["low"] == pytest.approx(rate["low"] * len(t))
