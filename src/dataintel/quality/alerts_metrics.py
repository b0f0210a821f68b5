"""The Prometheus view of alerts, read from the metadata store at each scrape (so every
replica reports the same, whichever process opened the alert):

- ``dataintel_quality_alerts_open{severity,kind}``: alerts open or acknowledged, summed
  over every project;
- ``dataintel_quality_notifications_pending``: notifications waiting in the outbox.

No project label and no per-alert series: /metrics answers without a credential
(ADR 0004), and a project id or an alert title as a label would show one tenant's names
and incidents to anyone who can reach it. The platform pages on the totals; which
project and which alert is answered by ``GET /v1/quality/alerts`` with a credential.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from dataintel.quality import alert_repository as repo


class AlertCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        alerts = GaugeMetricFamily(
            "dataintel_quality_alerts_open",
            "Quality alerts open or acknowledged (all projects), by severity and kind.",
            labels=["severity", "kind"],
        )
        pending = GaugeMetricFamily(
            "dataintel_quality_notifications_pending",
            "Alert notifications waiting in the outbox (undelivered or being retried).",
        )
        try:
            with self.sessions() as session:
                counts = repo.open_counts(session)
                waiting = repo.pending_notifications(session)
        except Exception:  # noqa: BLE001 - a scrape must not fail with the metadata store
            return
        for severity, kind, n in counts:
            alerts.add_metric([severity, kind], float(n))
        pending.add_metric([], float(waiting))
        yield alerts
        yield pending


def register(registry: CollectorRegistry, sessions: sessionmaker[Session]) -> None:
    """Add the collector to ``registry`` (once per registry)."""
    if not getattr(registry, "_dataintel_quality_alerts", False):
        registry.register(AlertCollector(sessions))
        registry._dataintel_quality_alerts = True  # type: ignore[attr-defined]
