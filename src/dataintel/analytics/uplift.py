"""Incremental revenue from the holdout: carts that got an intervention against carts the
intervention engine deliberately left alone (``holdout``), by recovery rate and revenue per
cart within the outcome horizon, with 95 % intervals (``uplift_stats``).

Groups (intent to treat): a cart is *treated* when it has an intervention event of any
status (a failed delivery is still part of the treatment policy: dropping failures would
select carts), *control* when it has a ``holdout`` event; a cart with both is excluded and
counted. Its assignment time is its first such event; it counts in [from, to) by that time.
A cart is *recovered* when one of its orders came after the assignment, within the horizon;
its revenue is those orders' sum. Carts whose horizon has not ended yet are *pending*:
reported, left out (their outcome is not known). Per channel and action, a treated cart
belongs to the arm of its first intervention; every arm is compared with the whole control
group (the holdout is drawn before a channel or action is chosen).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dataintel.analytics.attribution_sql import Scope, purchases, touchpoints
from dataintel.analytics.revenue_schemas import ArmRead, ComparisonRead, Estimate, UpliftArm
from dataintel.analytics.revenue_schemas import UpliftRead as UpliftRead
from dataintel.analytics.uplift_stats import CONFIDENCE, newcombe, welch, wilson
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.queries import from_micros
from dataintel.storage.analytics.sql_terms import Params, micros

TREATED, CONTROL, BOTH = 1, 0, -1
RATE_METHOD = "newcombe_hybrid_score"
MEAN_METHOD = "welch_t"


def uplift_query(scope: Scope, horizon_us: int, now_us: int) -> tuple[str, list[Any]]:
    """Per (group, first channel, first action, pending): carts, recovered carts, revenue
    and the sum of squared revenue per cart (for the variance)."""
    p = Params()
    horizon = p(horizon_us)
    orders = purchases(scope, p, scope.start_us, scope.end_us + horizon_us)
    text = f"""
    WITH touched AS ({touchpoints(scope, p, delivered_only=False)}),
    treated AS (
        SELECT cart_id, min(t_us) AS at_us, arg_min(channel, t_us) AS channel,
               arg_min(action, t_us) AS action
        FROM touched GROUP BY cart_id
    ),
    held AS (
        SELECT cart_id, min({micros("ts")}) AS at_us FROM events
        WHERE project_id = {p(scope.project_id)} AND event = {p("holdout")}
          AND cart_id IS NOT NULL AND ts < {p(from_micros(scope.end_us))}
        GROUP BY cart_id
    ),
    assigned AS (
        SELECT t.cart_id AS cart_id,
               CASE WHEN coalesce(h.hit, 0) = 1 THEN {BOTH} ELSE {TREATED} END AS grp,
               CASE WHEN coalesce(h.hit, 0) = 1 THEN least(t.at_us, h.at_us)
                    ELSE t.at_us END AS at_us,
               t.channel AS channel, t.action AS action
        FROM treated AS t LEFT JOIN (SELECT cart_id, at_us, 1 AS hit FROM held) AS h
             ON h.cart_id = t.cart_id
        UNION ALL
        SELECT cart_id, {CONTROL} AS grp, at_us, CAST(NULL AS VARCHAR) AS channel,
               CAST(NULL AS VARCHAR) AS action
        FROM held WHERE cart_id NOT IN (SELECT cart_id FROM treated)
    ),
    orders AS ({orders}),
    outcomes AS (
        SELECT a.cart_id, a.grp, a.channel, a.action,
               CASE WHEN a.at_us + {horizon} > {p(now_us)} THEN 1 ELSE 0 END AS pending,
               max(CASE WHEN o.c_us - a.at_us > 0 AND o.c_us - a.at_us <= {horizon}
                   THEN 1 ELSE 0 END) AS recovered,
               sum(CASE WHEN o.c_us - a.at_us > 0 AND o.c_us - a.at_us <= {horizon}
                   THEN o.revenue ELSE 0.0 END) AS cart_revenue
        FROM assigned AS a LEFT JOIN orders AS o ON o.cart_id = a.cart_id
        WHERE a.at_us >= {p(scope.start_us)} AND a.at_us < {p(scope.end_us)}
        GROUP BY a.cart_id, a.grp, a.channel, a.action, a.at_us
    )
    SELECT grp, channel, action, pending, count(*) AS n_carts, sum(recovered) AS n_recovered,
           sum(cart_revenue) AS revenue_sum, sum(cart_revenue * cart_revenue) AS revenue_sq
    FROM outcomes GROUP BY grp, channel, action, pending
    ORDER BY grp, channel, action, pending"""  # noqa: S608
    return text, p.values


@dataclass(slots=True)
class Sums:
    carts: int = 0
    recovered: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0

    def add(self, row: dict[str, Any]) -> None:
        self.carts += int(row["n_carts"])
        self.recovered += int(row["n_recovered"] or 0)
        self.revenue += float(row["revenue_sum"] or 0.0)
        self.revenue_sq += float(row["revenue_sq"] or 0.0)

    @property
    def mean(self) -> float:
        return self.revenue / self.carts if self.carts else 0.0

    @property
    def variance(self) -> float:
        """Sample variance of revenue per cart (``ddof=1``)."""
        if self.carts < 2:
            return 0.0
        return max(0.0, (self.revenue_sq - self.revenue * self.mean) / (self.carts - 1))


def _total(rows: Iterable[dict[str, Any]]) -> Sums:
    sums = Sums()
    for row in rows:
        sums.add(row)
    return sums


def arm(sums: Sums) -> ArmRead:
    z = 1.959963984540054  # normal_quantile(0.975)
    interval = wilson(sums.recovered, sums.carts, z)
    return ArmRead(
        carts=sums.carts,
        recovered=sums.recovered,
        recovery_rate=sums.recovered / sums.carts if sums.carts else None,
        recovery_rate_low=interval.low if interval else None,
        recovery_rate_high=interval.high if interval else None,
        revenue=sums.revenue,
        revenue_per_cart=sums.mean if sums.carts else None,
    )


def compare(treated: Sums, control: Sums) -> ComparisonRead:
    """Treated minus control, with intervals; incremental = per-cart difference x treated."""
    if not treated.carts or not control.carts:
        return ComparisonRead()
    rate_t, rate_c = treated.recovered / treated.carts, control.recovered / control.carts
    rate = newcombe(treated.recovered, treated.carts, control.recovered, control.carts)
    means = welch(
        treated.mean, treated.variance, treated.carts, control.mean, control.variance, control.carts
    )
    n = treated.carts
    rate_est = Estimate(
        estimate=rate_t - rate_c,
        low=rate.low if rate else None,
        high=rate.high if rate else None,
    )
    mean_est = Estimate(
        estimate=means.difference,
        low=means.interval.low if means.interval else None,
        high=means.interval.high if means.interval else None,
    )
    return ComparisonRead(
        recovery_rate_difference=rate_est,
        relative_recovery_lift=(rate_t - rate_c) / rate_c if rate_c else None,
        revenue_per_cart_difference=mean_est,
        welch_df=means.df,
        incremental_conversions=rate_est.scaled(n),
        incremental_revenue=mean_est.scaled(n),
    )


def uplift(
    analytics: AnalyticsStore, scope: Scope, horizon_us: int, now_us: int, horizon: str
) -> UpliftRead:
    text, params = uplift_query(scope, horizon_us, now_us)
    rows = analytics.sql(text, params).to_pylist()
    known = [r for r in rows if not r["pending"]]
    control = _total(r for r in known if r["grp"] == CONTROL)
    treated_rows = [r for r in known if r["grp"] == TREATED]
    treated = _total(treated_rows)
    return UpliftRead(
        horizon=horizon,
        confidence=CONFIDENCE,
        rate_method=RATE_METHOD,
        revenue_method=MEAN_METHOD,
        control=arm(control),
        treatment=arm(treated),
        uplift=compare(treated, control),
        by_channel=_arms(treated_rows, "channel", control),
        by_action=_arms(treated_rows, "action", control),
        pending_carts=sum(int(r["n_carts"]) for r in rows if r["pending"]),
        excluded_carts=sum(int(r["n_carts"]) for r in known if r["grp"] == BOTH),
    )


def _arms(rows: list[dict[str, Any]], key: str, control: Sums) -> list[UpliftArm]:
    groups: dict[str | None, Sums] = {}
    for row in rows:
        groups.setdefault(row[key], Sums()).add(row)
    ordered = sorted(groups.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return [
        UpliftArm(value=value, treatment=arm(sums), uplift=compare(sums, control))
        for value, sums in ordered
    ]
