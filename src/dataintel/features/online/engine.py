"""The feature side of the stream processor: apply micro-batches, backfill new versions.

The processor calls ``apply`` after the analytics sink has applied a batch, and
``maybe_backfill`` between batches. Both run in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import structlog
from sqlalchemy.orm import Session, sessionmaker

from dataintel.api.ports import Port
from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.online import repository as backfill_repository
from dataintel.features.online.backfill import BackfillProgress, build_states, run_backfill
from dataintel.features.online.partials import state_field
from dataintel.features.online.plans import FeaturePlan, is_envelope_key, plan_project
from dataintel.features.online.sink import FeatureSink, now_us
from dataintel.storage.analytics.decode import decode_entries
from dataintel.storage.analytics.port import AnalyticsStore, ApplyResult
from dataintel.storage.eventlog.port import LogEntry
from dataintel.storage.online.port import EntityRef, OnlineStore

log = structlog.get_logger("dataintel.features")
BACKFILL_CHECK_SECONDS = 1.0
ONE_SCAN_FROM = 20  # recompute: more ids of an envelope key than this share one scan


class FeatureEngine:
    def __init__(
        self,
        online: OnlineStore,
        analytics: AnalyticsStore,
        configs: ActiveConfigCache,
        sessions: sessionmaker[Session],
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.online = online
        self.analytics = analytics
        self.configs = configs
        self.sessions = sessions
        self.clock = clock
        self.sink = FeatureSink(online, configs, clock)
        self._checked = 0.0
        self._deployed: dict[str, int | None] = {}  # project → config version last retired

    # --- the stream -------------------------------------------------------------------

    def apply(self, entries: Sequence[LogEntry], result: ApplyResult) -> None:
        """Apply the events the analytics sink holds for ``entries`` that the online store
        has not applied yet, and record the batch's end positions with them."""
        batch = result.batch if result.batch is not None else decode_entries(entries)
        if result.inserted < len(entries):
            batch = self._canonical(batch)
        batch = self._unapplied(batch)
        projects = [str(p) for p in pc.unique(batch.column("project_id")).to_pylist()]
        self._retire(projects)
        ends: dict[int, int] = {}
        for entry in entries:
            if entry.offset + 1 > ends.get(entry.partition, 0):
                ends[entry.partition] = entry.offset + 1
        self.sink.apply(batch, ends)
        self._retire(projects)  # the active config may have changed while applying

    def _unapplied(self, batch: pa.Table) -> pa.Table:
        """The rows at or after the online store's position of their partition: what is
        below was applied (state and positions commit together), so a replay whose batch
        boundaries differ from the first run's applies exactly the rest."""
        if batch.num_rows == 0:
            return batch
        positions = self.online.positions()
        partitions = batch.column("log_partition")
        offsets = batch.column("log_offset")
        keep = None
        for partition in pc.unique(partitions).to_pylist():
            rows = pc.and_(
                pc.equal(partitions, partition),
                pc.greater_equal(offsets, positions.get(int(partition), 0)),
            )
            keep = rows if keep is None else pc.or_(keep, rows)
        return batch if keep is None else batch.filter(keep)

    def _canonical(self, batch: pa.Table) -> pa.Table:
        """Keep the entries the analytics store holds as *the* copy of their event (a replay,
        or log duplicates of one event: the first by log order wins, as in analytics)."""
        keep: set[tuple[int, int]] = set()
        partitions = pc.unique(batch.column("log_partition")).to_pylist()
        for partition in partitions:
            rows = batch.filter(pc.equal(batch.column("log_partition"), partition))
            low, high = pc.min_max(rows.column("log_offset")).values()
            found = self.analytics.sql(
                "SELECT log_partition, log_offset FROM events "
                "WHERE log_partition = ? AND log_offset BETWEEN ? AND ?",
                [partition, low.as_py(), high.as_py()],
            )
            keep.update(
                zip(
                    found.column("log_partition").to_pylist(),
                    found.column("log_offset").to_pylist(),
                    strict=True,
                )
            )
        mask = [
            (p, o) in keep
            for p, o in zip(
                batch.column("log_partition").to_pylist(),
                batch.column("log_offset").to_pylist(),
                strict=True,
            )
        ]
        return batch.filter(pa.array(mask, type=pa.bool_()))

    def _retire(self, project_ids: Sequence[str]) -> None:
        """Unmark the built fields a project no longer deploys, before the stream applies a
        batch without them: they miss events from now on, so a later re-activation (a
        rollback, a re-deploy) rebuilds them from history like any new version. Checked once
        per config version of the project."""
        for project_id in project_ids:
            config = self.configs.get(project_id)
            if project_id in self._deployed and self._deployed[project_id] == config.version:
                continue
            deployed = {p.state_field for p in plan_project(project_id, config.snapshot)}
            stale = self.online.built(project_id) - deployed
            if stale:
                self.online.unmark_built(project_id, sorted(stale))
                log.info("feature versions retired", project_id=project_id, fields=sorted(stale))
            self._deployed[project_id] = config.version

    # --- backfill ---------------------------------------------------------------------

    def pending(self) -> dict[str, list[FeaturePlan]]:
        """Deployed feature versions whose online state is not built, per project."""
        with self.sessions() as session:
            projects = backfill_repository.deployed_project_ids(session)
        out: dict[str, list[FeaturePlan]] = {}
        for project_id in projects:
            plans = plan_project(project_id, self.configs.get(project_id).snapshot)
            if not plans:
                continue
            built = self.online.built(project_id)
            todo = [p for p in plans if p.state_field not in built]
            if todo:
                out[project_id] = todo
        return out

    def maybe_backfill(
        self, analytics_next: dict[int, int] | None = None, *, force: bool = False
    ) -> int:
        """Build every pending version (checked once a second; ``force``: now). Only when
        the online store has applied everything the analytics store has (``analytics_next``:
        its positions), so the state built from analytics continues exactly where the
        stream stands. Returns how many versions were built."""
        now = time.monotonic()
        if now - self._checked < BACKFILL_CHECK_SECONDS and not force:
            return 0
        self._checked = now
        applied = self.analytics.positions() if analytics_next is None else analytics_next
        online = self.online.positions()
        if any(online.get(p, 0) < n for p, n in applied.items()):
            return 0
        built = 0
        for project_id, plans in self.pending().items():
            version = self.configs.get(project_id).version or 0
            progress = BackfillProgress(project_id, [p.state_field for p in plans])
            log.info("backfill started", project_id=project_id, fields=progress.fields)
            self._save(version, progress)
            try:
                run_backfill(
                    self.analytics,
                    self.online,
                    self.sink.builder,
                    plans,
                    self.clock(),
                    progress,
                    on_progress=lambda p, v=version: self._save(v, p),  # type: ignore[misc]
                )
            except Exception as exc:
                progress.state, progress.error = "failed", repr(exc)
                progress.finished_at = time.time()
                self._save(version, progress)
                raise
            self._save(version, progress)
            built += len(plans)
        return built

    def _save(self, version: int, progress: BackfillProgress) -> None:
        with self.sessions.begin() as session:
            backfill_repository.save(session, version, progress)

    def recompute(self, project_id: str, entity_key: str, ids: Sequence[str]) -> int:
        """Rebuild the given entities' state from the analytics store (repair)."""
        plans = [
            p
            for p in plan_project(project_id, self.configs.get(project_id).snapshot)
            if p.entity_key == entity_key
        ]
        now = self.clock()
        written = 0
        # One scan per id where the key is an envelope column (an indexed filter) and they
        # are few; else one scan of the key's source events for all of them.
        many = not is_envelope_key(entity_key) or len(ids) > ONE_SCAN_FROM
        shared = (
            build_states(
                self.analytics, self.sink.builder, plans, now, among=(entity_key, frozenset(ids))
            )
            if many
            else None
        )
        for entity_id in ids:
            states = (
                shared
                if shared is not None
                else build_states(
                    self.analytics, self.sink.builder, plans, now, entity=(entity_key, entity_id)
                )
            )
            ref = EntityRef(project_id, entity_key, entity_id)
            blobs = dict(states.get(ref, {}))
            # An entity with no event keeps no stale state: write empty blobs explicitly.
            for plan in plans:
                blobs.setdefault(plan.state_field, {"t": {}, "b": None, "e": None, "l": None})
            self.online.replace({ref: blobs}, [state_field(p) for p in plans])
            written += 1
        return written

    def close(self) -> None:
        self.sink.close()


@dataclass(frozen=True, slots=True)
class Recompute:
    """Recompute beside the processor of this process: between two of its micro-batches
    (it holds ``lock`` while it applies), so both sinks agree."""

    engine: FeatureEngine
    lock: asyncio.Lock

    async def run(self, project_id: str, entity_key: str, ids: Sequence[str]) -> None:
        async with self.lock:
            await asyncio.to_thread(self.engine.recompute, project_id, entity_key, ids)


RECOMPUTE: Port[Recompute] = Port(
    "recompute", "recompute runs beside the stream processor: call a process that runs it"
)
