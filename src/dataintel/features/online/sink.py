"""The processor's feature sink: micro-batch → partial tiles → OnlineStore, exactly once.

Runs after the analytics sink in the same step, on the entries the analytics store kept (a
log duplicate of an event, e.g. from a producer retry, is applied once) and that the online
store has not applied yet (the engine drops entries below its positions). The partial
groups stay columnar all the way to the store, which merges them with the batch's end
positions. A store that reports conflicts (Redis after a crash between its entity scripts
and its positions) gets each conflicting entity recomputed from the entries after the
entity's stored offset, then the positions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.online.partials import PartialBuilder
from dataintel.features.online.plans import FeaturePlan, group_by_source, plan_project
from dataintel.storage.online.port import ApplyOutcome, Conflict, OnlineStore, PartialGroup


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

    def apply(self, batch: pa.Table, ends: Mapping[int, int]) -> ApplyOutcome:
        """Apply the decoded events of one micro-batch (EVENT_SCHEMA) to the online store and
        record ``ends`` (per partition, the next offset after the batch)."""
        groups: list[list[FeaturePlan]] = []
        if batch.num_rows:
            projects = [str(p) for p in pc.unique(batch.column("project_id")).to_pylist()]
            groups = list(group_by_source(self.plans(projects)).values())
        now = self.clock()
        partials = self.builder.build(batch, groups, now) if groups else []
        outcome = self.online.apply(partials, ends)
        if not outcome.conflicts:
            return outcome
        conflicts = outcome.conflicts
        outcome.conflicts = []
        for conflict in conflicts:
            retry = self.online.apply(self._retry(batch, groups, conflict, now), {})
            outcome.applied += retry.applied
            outcome.skipped += retry.skipped
            outcome.conflicts.extend(retry.conflicts)
        if not outcome.conflicts:
            self.online.commit(ends)
        return outcome

    def _retry(
        self,
        batch: pa.Table,
        groups: Sequence[Sequence[FeaturePlan]],
        conflict: Conflict,
        now: int,
    ) -> list[PartialGroup]:
        """One entity's partials of one partition from the entries after its stored offset."""
        rest = batch.filter(
            pc.and_(
                pc.equal(batch.column("log_partition"), conflict.partition),
                pc.greater(batch.column("log_offset"), conflict.stored_offset),
            )
        )
        ref = conflict.ref
        out = []
        for group in self.builder.build(rest, groups, now):
            if (group.project_id, group.entity_key) != (ref.project_id, ref.entity_key):
                continue
            table = group.table.filter(pc.equal(group.table["entity"], ref.entity_id))
            if table.num_rows:
                out.append(
                    PartialGroup(
                        group.project_id, group.entity_key, group.fields, table, group.now_us
                    )
                )
        return out

    def close(self) -> None:
        self.builder.close()
