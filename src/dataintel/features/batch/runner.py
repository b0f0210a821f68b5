"""Running a project's batch features: the ones due per their schedule, at the slot time.

A run at ``at`` computes each due feature version as of ``at`` (``compute``), makes it the
online store's values (``OnlineStore.write_batch``), keeps it for point-in-time reads
(``AnalyticsStore.write_batch_values``) and records it (``batch_feature_runs``). Every step
is keyed by (feature, version, ``at``), so running a slot again writes the same rows: the
job is idempotent per (project, slot).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.batch import repository
from dataintel.features.batch.compute import compute
from dataintel.model.batch import BatchFeatureSpec, duration_seconds
from dataintel.storage.analytics.port import AnalyticsStore, BatchRun
from dataintel.storage.online.port import BatchValues, OnlineStore

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def due(spec: BatchFeatureSpec, last: datetime | None, at: datetime) -> bool:
    """Never run, a re-run of the same slot, or ``schedule`` since the last run."""
    if last is None or last == at:
        return True
    return at > last and (at - last).total_seconds() >= duration_seconds(spec.schedule)


class BatchRunner:
    def __init__(
        self,
        analytics: AnalyticsStore,
        online: OnlineStore,
        sessions: sessionmaker[Session],
        configs: ActiveConfigCache,
    ) -> None:
        self.analytics = analytics
        self.online = online
        self.sessions = sessions
        self.configs = configs

    def run(
        self, project_id: str, at: datetime, names: Sequence[str] | None = None, force: bool = False
    ) -> dict[str, Any]:
        """Compute the due (``force``: all) enabled batch features (``names``: only those)
        of the project's deployed config as of ``at``; the outcome counts entities."""
        at = at.astimezone(UTC)
        snapshot = self.configs.get(project_id).snapshot
        specs = [b for b in snapshot.batch if b.enabled and (names is None or b.name in names)]
        with self.sessions() as session:
            last = repository.last_runs(session, project_id)
        computed: dict[str, int] = {}
        skipped: list[str] = []
        for spec in specs:
            if not force and not due(spec, last.get((spec.name, spec.version)), at):
                skipped.append(spec.name)
                continue
            computed[spec.name] = self._one(project_id, spec, snapshot.pipelines, at)
        return {"computed_at": at.isoformat(), "computed": computed, "not_due": skipped}

    def _one(self, project_id: str, spec: BatchFeatureSpec, pipelines: Any, at: datetime) -> int:
        t_us = micros(at)
        values = compute(self.analytics, spec, pipelines, project_id, t_us)
        self.analytics.write_batch_values(
            BatchRun(
                project_id,
                spec.name,
                spec.version,
                t_us,
                values,
                spec.empty_value(),
                spec.entity_key,
            )
        )
        self.online.write_batch(
            BatchValues(
                project_id, spec.entity_key, spec.state_field, t_us, spec.empty_value(), values
            )
        )
        with self.sessions.begin() as session:
            repository.record_run(session, project_id, spec.name, spec.version, at, len(values))
        return len(values)
