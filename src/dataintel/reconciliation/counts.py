"""What the analytics store holds for a project and day, in queries written once (DuckDB SQL,
transpiled for ClickHouse by ``AnalyticsStore.sql``): totals, which event ids it holds, and
the platform cross-checks. A day is [start, end) of ``received_at`` (arrival, UTC)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from dataintel.model.platform import INTERVENTION_EVENT, PREDICTION_EVENT
from dataintel.model.snapshot import AnalyticsSettings
from dataintel.storage.analytics.port import AnalyticsStore

ID_CHUNK = 5_000  # event ids per membership query

_TOTALS = """
SELECT count(*) AS events,
       count(*) FILTER (WHERE event = $4) AS purchases,
       coalesce(sum(CASE WHEN event = $4
           THEN TRY_CAST(json_extract_string(properties, $5) AS DOUBLE) END), 0.0) AS revenue
FROM events WHERE project_id = $1 AND received_at >= $2 AND received_at < $3
"""
_DAY_IDS = """
SELECT event_id FROM events WHERE project_id = $1 AND received_at >= $2 AND received_at < $3
"""
_STORED = "SELECT event_id FROM events WHERE project_id = $1 AND list_contains($2, event_id)"
# Events of the day (``$4``) whose cart has no event of the kinds ``$5`` at any time (or
# which name no cart).
_ORPHANS = """
SELECT count(*) AS n FROM events
WHERE project_id = $1 AND received_at >= $2 AND received_at < $3 AND event = $4
  AND (cart_id IS NULL OR cart_id NOT IN (
      SELECT cart_id FROM events
      WHERE project_id = $1 AND list_contains($5, event) AND cart_id IS NOT NULL))
"""


@dataclass(frozen=True, slots=True)
class Totals:
    events: int
    purchases: int
    revenue: float

    def as_dict(self) -> dict[str, int | float]:
        return {"events": self.events, "purchases": self.purchases, "revenue": self.revenue}


def totals(
    store: AnalyticsStore,
    project_id: str,
    start: datetime,
    end: datetime,
    settings: AnalyticsSettings,
) -> Totals:
    params = [project_id, start, end, settings.purchase_event, settings.revenue_field]
    row = store.sql(_TOTALS, params).to_pylist()[0]
    return Totals(int(row["events"]), int(row["purchases"]), round(float(row["revenue"]), 6))


def day_ids(store: AnalyticsStore, project_id: str, start: datetime, end: datetime) -> set[str]:
    table = store.sql(_DAY_IDS, [project_id, start, end])
    return {str(v) for v in table.column("event_id").to_pylist()}


def stored_ids(store: AnalyticsStore, project_id: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` the store holds for the project (any day)."""
    wanted = sorted(ids)
    found: set[str] = set()
    for i in range(0, len(wanted), ID_CHUNK):
        table = store.sql(_STORED, [project_id, wanted[i : i + ID_CHUNK]])
        found.update(str(v) for v in table.column("event_id").to_pylist())
    return found


def cross_checks(
    store: AnalyticsStore,
    project_id: str,
    start: datetime,
    end: datetime,
    settings: AnalyticsSettings,
) -> dict[str, int]:
    """The platform's events of the day that miss the event they follow (docs/reconciliation.md):
    predictions and purchases whose cart has no cart event, interventions whose cart has no
    prediction."""
    checks = {
        "predictions_without_cart": (PREDICTION_EVENT, list(settings.cart_events)),
        "interventions_without_prediction": (INTERVENTION_EVENT, [PREDICTION_EVENT]),
        "purchases_without_cart": (settings.purchase_event, list(settings.cart_events)),
    }
    found: dict[str, int] = {}
    for name, (event, before) in checks.items():
        table = store.sql(_ORPHANS, [project_id, start, end, event, before])
        found[name] = int(table.column("n").to_pylist()[0])
    return found
