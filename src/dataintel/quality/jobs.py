"""The quality plane's scheduled job: ``quality.rules`` runs every enabled rule of each
project's deployed config every ``quality_interval_seconds`` and stores the results.

A slot's window is ``[slot - 24 h, slot)`` of event time by default (a manual run may pass
``window_seconds`` and ``end``); running a slot again replaces its results, so a run is
idempotent per (project, slot)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.model.jobs import Job, JobOutcome, JobRun
from dataintel.quality.schemas import RunParams
from dataintel.quality.service import run_rules
from dataintel.storage.analytics.port import AnalyticsStore

RULES_JOB = "quality.rules"
RULES_DESCRIPTION = "Run the deployed data-quality rules and store their results."


def quality_jobs(
    analytics: AnalyticsStore,
    sessions: sessionmaker[Session],
    configs: ActiveConfigCache,
    interval_seconds: float = 900.0,
) -> list[Job]:
    async def run(job_run: JobRun) -> JobOutcome:
        params = RunParams.model_validate(dict(job_run.params))
        return await asyncio.to_thread(
            run_rules,
            analytics,
            sessions,
            configs,
            job_run.project_id,
            job_run.slot,
            job_run.id,
            params,
        )

    return [
        Job(
            name=RULES_JOB,
            description=RULES_DESCRIPTION,
            every=timedelta(seconds=interval_seconds),
            run=run,
        )
    ]
