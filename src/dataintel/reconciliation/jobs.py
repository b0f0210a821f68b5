"""The reconciliation plane's scheduled job (ADR 0012): ``reconciliation.daily``."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session, sessionmaker

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.online.engine import Recompute
from dataintel.model.jobs import Job, JobOutcome, JobRun
from dataintel.reconciliation.service import Reconciler, Stores
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.eventlog.port import EventLog
from dataintel.storage.online.port import OnlineStore

DAILY = "reconciliation.daily"
DESCRIPTION = (
    "Counts of the event log, analytics and online stores per day (yesterday and today), "
    "platform cross-checks, and repair of lost events and entity state by replay"
)


def days_of(run: JobRun) -> list[date]:
    """The days a run checks: the ``days`` it was triggered with (validated by the route),
    else the slot's day and the day before (UTC)."""
    asked = run.params.get("days")
    if asked:
        return [date.fromisoformat(str(day)) for day in asked]
    today = run.slot.date()
    return [today - timedelta(days=1), today]


def reconciliation_jobs(
    eventlog: EventLog,
    analytics: AnalyticsStore,
    online: OnlineStore,
    recompute: Recompute,
    sessions: sessionmaker[Session],
    configs: ActiveConfigCache,
    every: timedelta = timedelta(hours=1),
    scheduled: bool = True,
    online_ttl: timedelta | None = None,
) -> list[Job]:
    """``every``: ``Settings.reconciliation_interval_seconds``; ``scheduled``:
    ``Settings.reconciliation_scheduled`` (false: scheduled runs return at once, only manual
    runs check); ``online_ttl``: ``Settings.online_ttl_seconds``."""
    stores = Stores(eventlog, analytics, online, recompute, sessions, configs, online_ttl)
    reconciler = Reconciler(stores)

    async def daily(run: JobRun) -> JobOutcome:
        if not (run.manual or scheduled):
            return {"skipped": "scheduled runs are off (reconciliation_scheduled)"}
        return await reconciler.run(run.project_id, days_of(run), run.id)

    return [Job(DAILY, DESCRIPTION, every, daily)]
