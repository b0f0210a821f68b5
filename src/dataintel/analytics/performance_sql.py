"""The outcome join of model performance, in DuckDB SQL (transpiled for ClickHouse):
every ``prediction`` event of a cart in [from, to), with label 1 when the cart has a
purchase (the project's ``purchase_event``) strictly after the prediction and at most the
outcome horizon later, else 0. One row per prediction, in (model version, time, event id)
order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataintel.storage.analytics.queries import from_micros
from dataintel.storage.analytics.sql_terms import Params, micros, number_field, text_field

PREDICTION_EVENT = "prediction"


@dataclass(frozen=True, slots=True)
class PairScope:
    project_id: str
    start_us: int
    end_us: int
    horizon_us: int
    purchase_event: str
    model_versions: tuple[str, ...] = ()


def pairs_query(scope: PairScope) -> tuple[str, list[Any]]:
    p = Params()
    version = text_field("model_version")
    only = f"AND list_contains({p(list(scope.model_versions))}, mv)" if scope.model_versions else ""
    horizon = p(scope.horizon_us)
    text = f"""
    WITH preds AS (
        SELECT event_id, cart_id, {micros("ts")} AS p_us,
               {number_field("probability")} AS prob, {version} AS mv
        FROM events
        WHERE project_id = {p(scope.project_id)} AND event = {p(PREDICTION_EVENT)}
          AND cart_id IS NOT NULL
          AND ts >= {p(from_micros(scope.start_us))} AND ts < {p(from_micros(scope.end_us))}
    ),
    chosen AS (SELECT * FROM preds WHERE TRUE {only}),
    buys AS (
        SELECT cart_id, {micros("ts")} AS b_us FROM events
        WHERE project_id = {p(scope.project_id)} AND event = {p(scope.purchase_event)}
          AND cart_id IS NOT NULL AND ts > {p(from_micros(scope.start_us))}
          AND ts <= {p(from_micros(scope.end_us + scope.horizon_us))}
    )
    SELECT c.event_id AS event_id, c.mv AS model_version, c.p_us AS p_us, c.prob AS prob,
           max(CASE WHEN b.b_us - c.p_us > 0 AND b.b_us - c.p_us <= {horizon}
               THEN 1 ELSE 0 END) AS label
    FROM chosen AS c LEFT JOIN buys AS b ON b.cart_id = c.cart_id
    GROUP BY c.event_id, c.mv, c.p_us, c.prob
    ORDER BY model_version, p_us, event_id"""  # noqa: S608
    return text, p.values
