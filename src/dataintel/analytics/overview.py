"""The overview's one query: every number of both periods, per point of the series.

Definitions (docs/analytics.md, "Overview"): all numbers read the caller's events with
``ts < as_of`` that match the filters. A cart's events are the cart events (settings) and
purchases carrying its ``cart_id``, ordered by (time, cart events before purchases,
event_id).

- events, active users (distinct user_id), revenue (sum of the purchase event's revenue
  property): events whose time lies in the period;
- carts created: carts whose first cart event lies in the period;
- carts abandoned: carts whose abandonment lies in the period: the first cart event that
  is followed by no event of the cart (cart event or purchase) within the idle time, plus
  the idle time (so only once that time has passed before ``as_of``);
- carts recovered and recovered revenue: of the carts abandoned in the period, those with a
  purchase after the abandonment and at most the outcome horizon after it, observed before
  ``as_of``; its revenue is that of the first such purchase;
- interventions sent: intervention ids (the event id when absent) whose first
  ``intervention`` event with a status other than ``failed`` lies in the period.

The query returns long rows (metric, period, bucket, value); ``active_users_total`` is the
distinct count over a whole period (distinct users do not add up over points).
"""

from __future__ import annotations

from datetime import UTC, datetime

from dataintel.analytics.params import AnalyticsParams
from dataintel.analytics.sql import Binder, Periods, number_of, scoped_events
from dataintel.model.platform import FAILED_STATUS, INTERVENTION_EVENT
from dataintel.model.snapshot import AnalyticsSettings

COUNTS = (
    "events",
    "active_users",
    "carts_created",
    "carts_abandoned",
    "carts_recovered",
    "interventions_sent",
)
SUMS = ("revenue", "recovered_revenue")
# Beyond every event time: "no next event of the cart" (ClickHouse's lead() has no NULL).
FAR_FUTURE = datetime(2299, 1, 1, tzinfo=UTC)


def overview_query(
    project_id: str, params: AnalyticsParams, settings: AnalyticsSettings
) -> tuple[str, list[object]]:
    b = Binder()
    ev = scoped_events(project_id, params, b, "event_id, event, ts, user_id, cart_id, properties")
    at = Periods(params, b)
    purchase = b(settings.purchase_event)
    idle = b(settings.seconds("abandon_after"))
    horizon = b(settings.seconds("outcome_horizon"))
    revenue = number_of(settings.revenue_field, b)
    cart_events = b(list(settings.cart_events))
    far, as_of = b(FAR_FUTURE), b(params.as_of)
    intervention, failed = b(INTERVENTION_EVENT), b(FAILED_STATUS)
    status, intervention_id = b("status"), b("intervention_id")

    def rows(metric: str, value: str, source: str, moment: str, where: str = "") -> str:
        return (
            f"SELECT {b(metric)} AS metric, {at.period(moment)} AS period, "  # noqa: S608
            f"{at.bucket(moment)} AS bucket, CAST({value} AS DOUBLE) AS value "
            f"FROM {source} WHERE {at.within(moment)}{where} GROUP BY period, bucket"
        )

    # Only placeholders and the fixed SQL above are interpolated: no user value.
    text = f"""
WITH ev AS ({ev}),
cart_seq AS (
    SELECT cart_id, ts, event_id, event = {purchase} AS is_purchase,
        lead(ts, 1, {far}) OVER (
            PARTITION BY cart_id ORDER BY ts, event = {purchase}, event_id) AS next_ts
    FROM ev
    WHERE cart_id IS NOT NULL AND (list_contains({cart_events}, event) OR event = {purchase})
),
carts AS (
    SELECT cart_id, min(ts) AS created_at,
        min(CASE WHEN next_ts > ts + INTERVAL ({idle}) SECOND THEN ts END) AS idle_from
    FROM cart_seq WHERE NOT is_purchase GROUP BY cart_id
),
abandoned AS (
    SELECT cart_id, idle_from + INTERVAL ({idle}) SECOND AS abandoned_at FROM carts
    WHERE idle_from IS NOT NULL AND idle_from + INTERVAL ({idle}) SECOND < {as_of}
),
purchases AS (
    SELECT cart_id, ts, event_id, {revenue} AS revenue FROM ev
    WHERE event = {purchase} AND cart_id IS NOT NULL
),
recovered AS (
    SELECT cart_id, abandoned_at, revenue FROM (
        SELECT a.cart_id AS cart_id, a.abandoned_at AS abandoned_at, p.revenue AS revenue,
            row_number() OVER (PARTITION BY a.cart_id ORDER BY p.ts, p.event_id) AS rn
        FROM abandoned a JOIN purchases p ON p.cart_id = a.cart_id
        WHERE p.ts > a.abandoned_at AND p.ts <= a.abandoned_at + INTERVAL ({horizon}) SECOND
    ) first_purchase WHERE rn = 1
),
sent AS (
    SELECT coalesce(nullif(json_extract_string(properties, {intervention_id}), ''), event_id)
        AS intervention, min(ts) AS sent_at
    FROM ev
    WHERE event = {intervention}
        AND coalesce(json_extract_string(properties, {status}), '') != {failed}
    GROUP BY intervention
)
{rows("events", "count(*)", "ev", "ts")}
UNION ALL {rows("active_users", "count(DISTINCT user_id)", "ev", "ts")}
UNION ALL SELECT {b("active_users_total")} AS metric, {at.period("ts")} AS period,
    CAST(-1 AS BIGINT) AS bucket, CAST(count(DISTINCT user_id) AS DOUBLE) AS value
    FROM ev WHERE {at.within("ts")} GROUP BY period
UNION ALL {rows("revenue", f"sum({revenue})", "ev", "ts", f" AND event = {purchase}")}
UNION ALL {rows("carts_created", "count(*)", "carts", "created_at")}
UNION ALL {rows("carts_abandoned", "count(*)", "abandoned", "abandoned_at")}
UNION ALL {rows("carts_recovered", "count(*)", "recovered", "abandoned_at")}
UNION ALL {rows("recovered_revenue", "sum(revenue)", "recovered", "abandoned_at")}
UNION ALL {rows("interventions_sent", "count(*)", "sent", "sent_at")}
"""  # noqa: S608
    return text, b.values
