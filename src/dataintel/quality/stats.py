"""Feature statistics and drift (the ``quality.drift`` job).

For each enabled deployed feature with a source field, the job reads the field's values on
the last complete UTC day (``events`` of the feature's source event in the analytics
store, read as numbers: the feature's *input* distribution, the same every entity's value
is aggregated from) and stores the day's count, nulls, mean, quantiles and histogram.
Drift compares that day with the ``reference_days`` before it: bins from the reference's
quantiles (model/drift.py), PSI and Jensen-Shannon distance; PSI ≥ psi_warning or JS ≥
js_warning opens a drift alert (critical from psi_critical), back under both clears it.
Each side reads at most ``SAMPLE`` values (the most recent), so a run's memory is bounded.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dataintel.model.drift import jensen_shannon, psi, quantile_edges, shares
from dataintel.model.monitoring import DriftSettings
from dataintel.model.snapshot import ConfigSnapshot, FeatureSpec
from dataintel.quality import alerts
from dataintel.quality import stats_repository as repo
from dataintel.quality.anomaly_metrics import EPOCH
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.sql_terms import Params, number_field
from dataintel.storage.metadata.types import utcnow

DAY = timedelta(days=1)
SAMPLE = 200_000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def last_complete_day(slot: datetime) -> datetime:
    return EPOCH + ((slot - EPOCH) // DAY - 1) * DAY


def quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class FeatureMonitor:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        analytics: AnalyticsStore,
        snapshot_of: Callable[[str], ConfigSnapshot],
    ) -> None:
        self.sessions, self.analytics, self.snapshot_of = sessions, analytics, snapshot_of

    def values(
        self, project_id: str, feature: FeatureSpec, start: datetime, end: datetime
    ) -> tuple[int, list[float]]:
        """(events, the non-null values) of the feature's source field in [start, end)."""
        assert feature.field is not None
        p = Params()
        where = (
            f"project_id = {p(project_id)} AND event = {p(feature.source_event)} "
            f"AND ts >= {p(start)} AND ts < {p(end)}"
        )
        total = self.analytics.sql(f"SELECT count(*) AS n FROM events WHERE {where}", p.values)  # noqa: S608
        value = number_field(feature.field)
        query = (
            f"SELECT {value} AS v FROM events WHERE {where} AND {value} IS NOT NULL "  # noqa: S608
            f"ORDER BY ts DESC LIMIT {SAMPLE}"
        )
        found = self.analytics.sql(query, p.values).column("v").to_pylist()
        return int(total.column("n")[0].as_py()), [float(v) for v in found]

    def run(self, project_id: str, slot: datetime) -> dict[str, Any]:
        snapshot = self.snapshot_of(project_id)
        settings = snapshot.monitoring.drift
        day = last_complete_day(slot)
        watched = [f for f in snapshot.features if f.enabled and f.field is not None]
        outcome: dict[str, Any] = {"day": day.isoformat(), "features": {}}
        rows, now = [], utcnow()
        for feature in watched:
            count, current = self.values(project_id, feature, day, day + DAY)
            start = day - settings.reference_days * DAY
            _, reference = self.values(project_id, feature, start, day)
            row = statistics_row(project_id, feature.name, day, count, current)
            row["drift"] = drift(reference, current, settings) if settings.enabled else {}
            row["computed_at"] = now
            rows.append(row)
            outcome["features"][feature.name] = row["drift"].get("status", "not_evaluated")
        with self.sessions.begin() as session:
            for row in rows:
                repo.save(session, row)
                self._alert(session, project_id, row, now)
        return outcome

    def _alert(self, session: Session, project_id: str, row: dict[str, Any], now: datetime) -> None:
        found = row["drift"]
        status = found.get("status")
        if status not in ("ok", "warning", "critical"):
            return
        alerts.observe(
            session,
            project_id,
            fingerprint=f"drift:{row['feature']}",
            failing=status != "ok",
            kind="drift",
            severity="critical" if status == "critical" else "warning",
            title=f"feature {row['feature']} drifted on {row['day']:%Y-%m-%d}: "
            f"PSI {found['psi']:.3f}, JS {found['js']:.3f}",
            detail={"feature": row["feature"], "day": row["day"].isoformat(), **found},
            source="quality.drift",
            now=now,
        )


def statistics_row(
    project_id: str, name: str, day: datetime, count: int, values: list[float]
) -> dict[str, Any]:
    ordered = sorted(values)
    edges = quantile_edges(ordered, 10)
    counts = [round(s * len(ordered)) for s in shares(ordered, edges)] if ordered else []
    return {
        "project_id": project_id,
        "feature": name,
        "day": day,
        "count": count,
        "nulls": count - len(ordered),
        "mean": statistics.fmean(ordered) if ordered else None,
        "quantiles": {str(q): quantile(ordered, q) for q in QUANTILES} if ordered else {},
        "histogram": {"edges": edges, "counts": counts},
    }


def drift(reference: list[float], current: list[float], settings: DriftSettings) -> dict[str, Any]:
    """PSI and JS distance of ``current`` against ``reference`` (bins: reference quantiles)."""
    if min(len(reference), len(current)) < settings.min_rows:
        return {"status": "not_evaluated", "reference": len(reference), "current": len(current)}
    edges = quantile_edges(reference, settings.bins)
    r, c = shares(reference, edges), shares(current, edges)
    index, distance = psi(r, c), jensen_shannon(r, c)
    status = "ok"
    if index >= settings.psi_warning or distance >= settings.js_warning:
        status = "warning"
    if index >= settings.psi_critical:
        status = "critical"
    return {
        "status": status,
        "psi": index,
        "js": distance,
        "bins": len(edges) + 1,
        "reference": len(reference),
        "current": len(current),
    }
