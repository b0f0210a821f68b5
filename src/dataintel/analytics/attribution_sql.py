"""The SQL of revenue attribution, written once in DuckDB SQL (``AnalyticsStore.sql``
transpiles it for ClickHouse). The project, event names, times and durations are bound as
parameters; the only text that varies is the weight expression of the model, chosen from
``WEIGHTS`` (code, never user input).

Vocabulary (docs/analytics-revenue.md):

- a *touchpoint* is one intervention (``intervention_id``, else the event id) that reached
  the shopper: any status but ``failed`` (an intervention with a ``failed`` status event is
  no touchpoint); its time is its first event's; channel / action / campaign are the first
  non-empty values its events carry;
- a *conversion* is one purchase event (the project's ``purchase_event``), one per
  ``order_id`` (the first by time), its revenue the ``revenue_field`` (missing → 0);
- a touchpoint may get credit for a conversion of the same cart when it happened at most
  ``window`` before it (0 ≤ conversion time - touch time ≤ window).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dataintel.storage.analytics.queries import from_micros
from dataintel.storage.analytics.sql_terms import Params, micros, number_field, text_field


class Model(StrEnum):
    LAST_TOUCH = "last_touch"
    FIRST_TOUCH = "first_touch"
    LINEAR = "linear"
    TIME_DECAY = "time_decay"
    POSITION_BASED = "position_based"


# The weight of touch ``r`` (1-based, ordered by time then intervention id) among the ``n``
# touches of one conversion; ``decay`` is the time-decay factor (1 for the latest touch).
WEIGHTS: dict[Model, str] = {
    Model.LAST_TOUCH: "CASE WHEN r = n THEN 1.0 ELSE 0.0 END",
    Model.FIRST_TOUCH: "CASE WHEN r = 1 THEN 1.0 ELSE 0.0 END",
    Model.LINEAR: "1.0 / n",
    Model.TIME_DECAY: "decay / sum(decay) OVER (PARTITION BY conv_id)",
    Model.POSITION_BASED: (
        "CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN r = 1 OR r = n THEN 0.4 "
        "ELSE 0.2 / greatest(n - 2, 1) END"
    ),
}
DIMENSIONS = ("channel", "action", "campaign")


@dataclass(frozen=True, slots=True)
class Scope:
    """What one attribution query reads: the project, the conversions' time range
    [start, end) in µs, the settings' event names and fields, the window and model."""

    project_id: str
    start_us: int
    end_us: int
    purchase_event: str
    revenue_field: str
    window_us: int
    model: Model
    half_life_us: int
    currency_field: str = "currency"
    currency: str | None = None
    intervention_event: str = "intervention"


def touchpoints(scope: Scope, p: Params, *, delivered_only: bool = True) -> str:
    """One row per intervention of a cart: ``cart_id, iid, t_us, channel, action,
    campaign`` (and ``failed``: 1 when one of its events says so)."""
    status = text_field("status")
    failed = f"max(CASE WHEN {status} = 'failed' THEN 1 ELSE 0 END)"
    having = f"HAVING {failed} = 0" if delivered_only else ""
    iid = f"coalesce({text_field('intervention_id')}, event_id)"
    return f"""
    SELECT cart_id, {iid} AS iid, min({micros("ts")}) AS t_us,
           arg_min({text_field("channel")}, ts) AS channel,
           arg_min({text_field("action")}, ts) AS action,
           arg_min({text_field("campaign")}, ts) AS campaign
    FROM events
    WHERE project_id = {p(scope.project_id)} AND event = {p(scope.intervention_event)}
      AND cart_id IS NOT NULL AND ts < {p(from_micros(scope.end_us))}
    GROUP BY cart_id, {iid}
    {having}"""  # noqa: S608


def purchases(scope: Scope, p: Params, start_us: int, end_us: int) -> str:
    """One row per order placed in [start, end): ``conv_id, cart_id, c_us, revenue``."""
    order = f"coalesce({text_field('order_id')}, event_id)"
    currency = ""
    if scope.currency is not None:
        currency = f"AND {text_field(scope.currency_field)} = {p(scope.currency)}"
    return f"""
    SELECT conv_id, cart_id, c_us, revenue FROM (
        SELECT event_id AS conv_id, cart_id, {micros("ts")} AS c_us,
               coalesce({number_field(scope.revenue_field)}, 0.0) AS revenue,
               row_number() OVER (PARTITION BY {order} ORDER BY ts, event_id) AS k
        FROM events
        WHERE project_id = {p(scope.project_id)} AND event = {p(scope.purchase_event)}
          AND ts >= {p(from_micros(start_us))} AND ts < {p(from_micros(end_us))} {currency}
    ) AS ranked WHERE k = 1"""  # noqa: S608


def weighted(scope: Scope, p: Params) -> str:
    """The CTEs ``conv`` (conversions in range), ``pairs`` (conversion x eligible touch,
    with its rank ``r`` among ``n``) and ``weighted`` (plus the model's weight ``w``)."""
    window = p(scope.window_us)
    half_life = p(float(scope.half_life_us))
    return f"""
    WITH conv AS ({purchases(scope, p, scope.start_us, scope.end_us)}),
    touches AS ({touchpoints(scope, p)}),
    joined AS (
        SELECT c.conv_id, c.revenue, c.c_us, t.iid, t.t_us, t.channel, t.action, t.campaign,
               c.c_us - t.t_us AS age_us
        FROM conv AS c JOIN touches AS t ON t.cart_id = c.cart_id
        WHERE c.c_us - t.t_us >= 0 AND c.c_us - t.t_us <= {window}
    ),
    pairs AS (
        SELECT *,
               row_number() OVER (PARTITION BY conv_id ORDER BY t_us, iid) AS r,
               count(*) OVER (PARTITION BY conv_id) AS n,
               exp(-ln(2.0) * (age_us - min(age_us) OVER (PARTITION BY conv_id))
                   / {half_life}) AS decay
        FROM joined
    ),
    weighted AS (SELECT *, CAST({WEIGHTS[scope.model]} AS DOUBLE) AS w FROM pairs)"""  # noqa: S608


def weights_query(scope: Scope) -> tuple[str, list[Any]]:
    """Every (conversion, touchpoint) pair with its weight (the invariants' test reads it)."""
    p = Params()
    text = (
        weighted(scope, p) + "\nSELECT conv_id, iid, revenue, r, n, age_us, w FROM weighted "
        "ORDER BY conv_id, r"
    )
    return text, p.values


def by_touch_query(scope: Scope) -> tuple[str, list[Any]]:
    """Per channel, per action and per campaign (``dim``, ``value``): attributed
    conversions (sum of weights) and revenue, touches, and conversions assisted."""
    p = Params()
    parts = [
        f"SELECT '{dim}' AS dim, {dim} AS value, sum(w) AS w_sum, "  # noqa: S608
        "sum(w * revenue) AS revenue_sum, count(*) AS n_touches, "
        f"count(DISTINCT conv_id) AS n_assisted FROM weighted GROUP BY {dim}"
        for dim in DIMENSIONS
    ]
    text = weighted(scope, p) + "\n" + "\nUNION ALL\n".join(parts)
    return text, p.values


def totals_query(scope: Scope) -> tuple[str, list[Any]]:
    """All conversions in range, and those with at least one eligible touchpoint."""
    p = Params()
    text = weighted(scope, p) + (  # noqa: S608
        ",\nhit AS (SELECT DISTINCT conv_id, 1 AS attributed FROM pairs)\n"
        "SELECT count(*) AS n_conv, coalesce(sum(c.revenue), 0.0) AS revenue_sum, "
        "coalesce(sum(CASE WHEN coalesce(h.attributed, 0) = 1 THEN 1 ELSE 0 END), 0) "
        "AS n_attributed, "
        "coalesce(sum(CASE WHEN coalesce(h.attributed, 0) = 1 THEN c.revenue ELSE 0.0 END), "
        "0.0) AS attributed_sum "
        "FROM conv AS c LEFT JOIN hit AS h ON h.conv_id = c.conv_id"
    )
    return text, p.values
