"""The processor's feature sink: micro-batch → partial tiles → OnlineStore, exactly once.

Runs after the analytics sink in the same step, on the entries the analytics store kept (a
log duplicate of an event, e.g. from a producer retry, is applied once). The online store
skips what an entity has already applied; a replay whose batch boundaries differ from the
first run's comes back as a conflict and is recomputed from the entries after the entity's
stored offset.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.online.partials import PartialBuilder
from dataintel.features.online.plans import FeaturePlan, group_by_source, plan_project
from dataintel.storage.online.port import ApplyOutcome, Conflict, OnlineStore


def now_us() -> int:
    return time.time_ns() // 1000


class FeatureSink:
    def __init__(
        self,
        online: OnlineStore,
        configs: ActiveConfigCache,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.online = online
        self.configs = configs
        self.clock = clock
        self.builder = PartialBuilder()

    def plans(self, project_ids: Sequence[str]) -> list[FeaturePlan]:
        plans: list[FeaturePlan] = []
        for project_id in project_ids:
            plans.extend(plan_project(project_id, self.configs.get(project_id).snapshot))
        return plans

    def apply(self, batch: pa.Table) -> ApplyOutcome:
        """Apply the decoded events of one micro-batch (EVENT_SCHEMA) to the online store."""
        if batch.num_rows == 0:
            return ApplyOutcome()
        projects = [str(p) for p in pc.unique(batch.column("project_id")).to_pylist()]
        groups = list(group_by_source(self.plans(projects)).values())
        if not groups:
            return ApplyOutcome()
        now = self.clock()
        outcome = self.online.apply(self.builder.build(batch, groups, now))
        conflicts = outcome.conflicts
        outcome.conflicts = []
        for conflict in conflicts:
            retry = self._retry(batch, groups, conflict, now)
            outcome.applied += retry.applied
            outcome.skipped += retry.skipped
            outcome.conflicts.extend(retry.conflicts)
        return outcome

    def _retry(
        self,
        batch: pa.Table,
        groups: Sequence[Sequence[FeaturePlan]],
        conflict: Conflict,
        now: int,
    ) -> ApplyOutcome:
        """Recompute one entity's update from the entries after its stored offset."""
        update = conflict.update
        rest = batch.filter(
            pc.and_(
                pc.equal(batch.column("log_partition"), update.partition),
                pc.greater(batch.column("log_offset"), conflict.stored_offset),
            )
        )
        wanted = [
            u
            for u in self.builder.build(rest, groups, now)
            if u.ref == update.ref and u.partition == update.partition
        ]
        return self.online.apply(wanted)

    def close(self) -> None:
        self.builder.close()
