"""Revenue attribution to interventions, and the holdout's incremental revenue: the service
behind ``GET /v1/analytics/revenue``.

The weights are computed in SQL (``attribution_sql``); this module rolls the per
(channel, action, campaign) sums up per dimension, which keeps the invariant exact: the
attributed revenue over every touchpoint equals the revenue of attributed conversions
(weights ≥ 0, summing to 1 per conversion).
"""

from __future__ import annotations

from typing import Any

from dataintel.analytics.attribution_params import RevenueParams
from dataintel.analytics.attribution_sql import Scope, by_touch_query, totals_query
from dataintel.analytics.revenue_schemas import Attributed, RevenueRead, Totals
from dataintel.analytics.uplift import uplift
from dataintel.model.snapshot import AnalyticsSettings
from dataintel.storage.analytics.port import AnalyticsStore


class RevenueService:
    def __init__(self, analytics: AnalyticsStore) -> None:
        self.analytics = analytics

    def revenue(
        self, project_id: str, settings: AnalyticsSettings, params: RevenueParams
    ) -> RevenueRead:
        scope = Scope(
            project_id=project_id,
            start_us=params.range.start_us,
            end_us=params.range.end_us,
            purchase_event=settings.purchase_event,
            revenue_field=settings.revenue_field,
            window_us=params.window_us,
            model=params.model,
            half_life_us=params.half_life_us,
            currency_field=settings.currency_field,
            currency=params.currency,
        )
        totals = self._one(*totals_query(scope))
        combos = self.analytics.sql(*by_touch_query(scope)).to_pylist()
        conversions, revenue = int(totals["n_conv"]), float(totals["revenue_sum"])
        attributed = Totals(
            conversions=int(totals["n_attributed"]), revenue=float(totals["attributed_sum"])
        )
        return RevenueRead(
            project_id=project_id,
            from_=params.range.start,
            to=params.range.end,
            model=params.model,
            window=params.window,
            half_life=params.half_life,
            currency=params.currency,
            purchase_event=settings.purchase_event,
            conversions=conversions,
            revenue=revenue,
            attributed=attributed,
            unattributed=Totals(
                conversions=conversions - attributed.conversions,
                revenue=revenue - attributed.revenue,
            ),
            by_channel=rollup(combos, "channel"),
            by_action=rollup(combos, "action"),
            by_campaign=rollup(combos, "campaign"),
            incremental=uplift(
                self.analytics, scope, params.horizon_us, params.now_us, params.horizon
            ),
        )

    def _one(self, text: str, params: list[Any]) -> dict[str, Any]:
        rows: list[dict[str, Any]] = self.analytics.sql(text, params).to_pylist()
        return rows[0]


def rollup(rows: list[dict[str, Any]], dim: str) -> list[Attributed]:
    """The rows of one dimension, by attributed revenue (highest first), then value."""
    out = [
        Attributed(
            value=row["value"],
            conversions=float(row["w_sum"]),
            revenue=float(row["revenue_sum"]),
            touches=int(row["n_touches"]),
            assisted_conversions=int(row["n_assisted"]),
        )
        for row in rows
        if row["dim"] == dim
    ]
    return sorted(out, key=lambda a: (-a.revenue, a.value is None, a.value or ""))
