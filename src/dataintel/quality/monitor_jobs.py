"""The monitoring jobs of the quality plane (run by the scheduler, once per project and
slot; ADR 0012):

- ``quality.anomalies`` (``quality_anomaly_interval_seconds``, hourly): judge the last
  complete bucket of every watched metric, raise or clear anomaly alerts, send their
  notifications;
- ``quality.drift`` (``quality_drift_interval_seconds``, daily): each deployed feature's
  statistics of the last complete day and its drift against the reference window;
- ``quality.consistency`` (``quality_consistency_interval_seconds``, every 15 min): served
  feature values of a sample of entities against their recomputation by SQL;
- ``quality.notify`` (``quality_notify_interval_seconds``, every minute): retry the
  project's alert notifications that are due (whoever raised them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from dataintel.features.serving.service import FeatureServer
from dataintel.model.jobs import Job, JobInfo, JobOutcome, JobRun
from dataintel.model.snapshot import ConfigSnapshot
from dataintel.quality.alerts_notify import AlertNotifier
from dataintel.quality.anomalies import AnomalyDetector
from dataintel.quality.consistency import ConsistencyMonitor
from dataintel.quality.stats import FeatureMonitor
from dataintel.settings import Settings
from dataintel.storage.analytics.port import AnalyticsStore


def monitor_jobs(
    settings: Settings,
    sessions: sessionmaker[Session],
    analytics: AnalyticsStore,
    snapshot_of: Callable[[str], ConfigSnapshot],
    server: FeatureServer,
    notifier: AlertNotifier | None = None,
    between_batches: asyncio.Lock | None = None,
) -> list[Job]:
    """The jobs; ``snapshot_of(project_id)``: the project's deployed config (e.g.
    ``lambda p: configs.get(p).snapshot`` with the ``CONFIGS`` cache)."""
    notifier = notifier or AlertNotifier(sessions, lambda p: snapshot_of(p).monitoring)
    detector = AnomalyDetector(sessions, analytics, snapshot_of)
    features = FeatureMonitor(sessions, analytics, snapshot_of)
    consistency = ConsistencyMonitor(
        sessions,
        analytics,
        server,
        snapshot_of,
        settings.quality_consistency_sample,
        between_batches,
    )

    async def anomalies(run: JobRun) -> JobOutcome:
        outcome = await asyncio.to_thread(detector.run, run.project_id, run.slot)
        outcome["notifications"] = await notifier.deliver(run.project_id)
        return outcome

    async def drift(run: JobRun) -> JobOutcome:
        outcome = await asyncio.to_thread(features.run, run.project_id, run.slot)
        outcome["notifications"] = await notifier.deliver(run.project_id)
        return outcome

    async def consistent(run: JobRun) -> JobOutcome:
        outcome = await consistency.run(run.project_id, run.slot)
        outcome["notifications"] = await notifier.deliver(run.project_id)
        return outcome

    async def notify(run: JobRun) -> JobOutcome:
        return dict(await notifier.deliver(run.project_id))

    runs = {
        "quality.anomalies": anomalies,
        "quality.drift": drift,
        "quality.consistency": consistent,
        "quality.notify": notify,
    }
    return [Job(i.name, i.description, i.every, runs[i.name]) for i in monitor_catalog(settings)]


def monitor_catalog(settings: Settings) -> list[JobInfo]:
    """The jobs' names, descriptions and intervals (what an API-only process lists)."""
    return [
        JobInfo(
            "quality.anomalies",
            "Judge the last complete bucket of each watched metric against its seasonal "
            "baseline; raise or clear anomaly alerts.",
            timedelta(seconds=settings.quality_anomaly_interval_seconds),
        ),
        JobInfo(
            "quality.drift",
            "Compute each deployed feature's statistics of the last day and its drift "
            "(PSI, Jensen-Shannon) against the reference window; raise or clear drift alerts.",
            timedelta(seconds=settings.quality_drift_interval_seconds),
        ),
        JobInfo(
            "quality.consistency",
            "Compare the served feature values of recently active entities with their "
            "recomputation by SQL at the same instant; alert on any mismatch.",
            timedelta(seconds=settings.quality_consistency_interval_seconds),
        ),
        JobInfo(
            "quality.notify",
            "Retry the alert notifications that are due (signed webhooks, back-off).",
            timedelta(seconds=settings.quality_notify_interval_seconds),
        ),
    ]
