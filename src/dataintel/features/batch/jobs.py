"""The batch features' scheduled job: ``features.batch``."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.batch.runner import BatchRunner
from dataintel.model.jobs import Job, JobOutcome, JobRun
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.online.port import OnlineStore

JOB = "features.batch"
DESCRIPTION = (
    "Compute the batch features that are due per their schedule, into the online store and "
    "the history of values."
)


def batch_feature_jobs(
    analytics: AnalyticsStore,
    online: OnlineStore,
    sessions: sessionmaker[Session],
    configs: ActiveConfigCache,
    tick_seconds: float = 60.0,
) -> list[Job]:
    """Every ``tick_seconds`` (``batch_features_tick_seconds``), per project: compute the
    batch features that are due per their schedule, as of the slot. A manual run computes
    them all (or ``params["features"]``: the names given), as of the trigger time."""
    runner = BatchRunner(analytics, online, sessions, configs)

    async def run(job: JobRun) -> JobOutcome:
        names = job.params.get("features")
        return await asyncio.to_thread(runner.run, job.project_id, job.slot, names, job.manual)

    return [
        Job(
            name=JOB,
            description=DESCRIPTION,
            every=timedelta(seconds=tick_seconds),
            run=run,
        )
    ]
