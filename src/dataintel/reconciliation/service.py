"""One reconciliation run for one project: for each day checked, the counts of the event
log, the analytics store and the online store, the discrepancies, and their repair by replay
from the log (docs/reconciliation.md). Repairs are idempotent: a second run over the same
day finds nothing and repairs nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from sqlalchemy.orm import Session, sessionmaker

from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.features.online.engine import Recompute
from dataintel.features.online.plans import FeaturePlan, plan_project
from dataintel.model.retention import EventCutoffs
from dataintel.model.snapshot import AnalyticsSettings
from dataintel.reconciliation import counts, logscan, online
from dataintel.reconciliation import repository as repo
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.eventlog.port import EventLog, LogEntry
from dataintel.storage.metadata.types import utcnow
from dataintel.storage.online.port import OnlineStore

logger = structlog.get_logger("dataintel.reconciliation")
OK, REPAIRED, DISCREPANT = "ok", "repaired", "discrepant"
LISTED = 1_000  # ids listed per discrepancy in a report (the count is always exact)


@dataclass(frozen=True, slots=True)
class Stores:
    """What a run reads and repairs (the worker's stores, beside the stream processor)."""

    eventlog: EventLog
    analytics: AnalyticsStore
    online: OnlineStore
    recompute: Recompute  # its lock is the processor's: held while the analytics store is written
    sessions: sessionmaker[Session]
    configs: ActiveConfigCache
    online_ttl: timedelta | None = None  # entities without an event for this long expire


def day_range(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _log_totals(table: pa.Table, settings: AnalyticsSettings) -> counts.Totals:
    purchases = table.filter(pc.equal(table.column("event"), settings.purchase_event))
    revenue = 0.0
    for text in purchases.column("properties").to_pylist():
        revenue += _number(_property(text, settings.revenue_field))
    return counts.Totals(table.num_rows, purchases.num_rows, round(revenue, 6))


def _property(text: str, name: str) -> object:
    value: object = orjson.loads(text).get(name)
    return value


def _number(value: object) -> float:
    """As the analytics SQL reads a property as a number (TRY_CAST): else nothing."""
    if isinstance(value, bool) or value is None:
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def _first_per_event(table: pa.Table, entries: list[LogEntry]) -> tuple[pa.Table, list[LogEntry]]:
    """The first entry per event id by log order (what the analytics store keeps)."""
    seen: set[str] = set()
    keep: list[int] = []
    for i, event_id in enumerate(table.column("event_id").to_pylist()):
        if event_id not in seen:
            seen.add(event_id)
            keep.append(i)
    return table.take(pa.array(keep, pa.int64())), [entries[i] for i in keep]


def _expired(table: pa.Table, cutoffs: EventCutoffs) -> set[str]:
    """Event ids past the project's retention cutoffs (never put back)."""
    gone: set[str] = set()
    if not cutoffs.any():
        return gone
    for event_id, event, ts in zip(
        table.column("event_id").to_pylist(),
        table.column("event").to_pylist(),
        table.column("ts").to_pylist(),
        strict=True,
    ):
        cutoff = cutoffs.of(event)
        if cutoff is not None and ts < cutoff:
            gone.add(event_id)
    return gone


@dataclass(slots=True)
class Finding:
    """What one day's check found and repaired (the report's body)."""

    discrepancies: list[dict[str, Any]] = field(default_factory=list)
    repairs: dict[str, Any] = field(default_factory=dict)
    unrepaired: bool = False
    held_back: str | None = None  # why nothing is repaired (the report says it)

    def hold_back(self) -> None:
        self.unrepaired = True
        self.repairs["held_back"] = self.held_back

    def status(self) -> str:
        if not self.discrepancies:
            return OK
        return DISCREPANT if self.unrepaired else REPAIRED


@dataclass(frozen=True, slots=True)
class LogDay:
    """The day's events in the log (first entry per event) and which the store has applied."""

    table: pa.Table
    entries: list[LogEntry]
    applied: list[str]  # event ids below the analytics store's positions
    scanned: int


class Reconciler:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    async def run(self, project_id: str, days: list[date], run_id: int) -> dict[str, Any]:
        """Check (and repair) each day; the job's outcome: per day, its report's id and status."""
        outcome: dict[str, Any] = {}
        for day in sorted(set(days)):
            report = await self.check_day(project_id, day)
            report_id = await asyncio.to_thread(self._save, project_id, day, run_id, report)
            outcome[day.isoformat()] = {"report_id": report_id, "status": report["status"]}
        return outcome

    async def check_day(self, project_id: str, day: date) -> dict[str, Any]:
        stores = self.stores
        start, end = day_range(day)
        active = await stores.configs.aget(project_id)
        settings = active.snapshot.analytics
        positions = await asyncio.to_thread(stores.analytics.positions)
        log = await self._log_day(project_id, start, end, positions)
        before = await asyncio.to_thread(
            counts.totals, stores.analytics, project_id, start, end, settings
        )
        finding = Finding()
        unsettled = await asyncio.to_thread(self._unsettled, project_id)
        if unsettled:  # the erased subjects' events may still be in the log
            finding.held_back = (
                f"{unsettled} GDPR erasure request(s) of the project are not finished"
            )
        expired = _expired(log.table, active.snapshot.retention.event_cutoffs(utcnow()))
        await self._analytics(project_id, (start, end), log, expired, finding)
        plans = plan_project(project_id, active.snapshot)
        await self._online(project_id, (start, end), plans, finding)
        after = await asyncio.to_thread(
            counts.totals, stores.analytics, project_id, start, end, settings
        )
        online_at = await asyncio.to_thread(stores.online.positions)
        log_counts = _log_totals(log.table, settings).as_dict()
        log_counts.update(_pending(log.entries, positions, online_at), expired=len(expired))
        # The entries read belong to every project: for the operator's log, not the report.
        logger.info("reconciliation day", project_id=project_id, day=str(day), read=log.scanned)
        report_counts: dict[str, Any] = {
            "event_log": log_counts,
            "analytics": before.as_dict(),
            "analytics_after_repair": after.as_dict(),
            "cross_checks": await asyncio.to_thread(
                counts.cross_checks, stores.analytics, project_id, start, end, settings
            ),
        }
        return {
            "status": finding.status(),
            "counts": report_counts,
            "discrepancies": finding.discrepancies,
            "repairs": finding.repairs,
        }

    def _save(self, project_id: str, day: date, run_id: int, report: dict[str, Any]) -> int:
        with self.stores.sessions.begin() as session:
            return repo.save(session, project_id, day, run_id, **report)

    def _unsettled(self, project_id: str) -> int:
        with self.stores.sessions() as session:
            return repo.unsettled_erasures(session, project_id)

    async def _log_day(
        self, project_id: str, start: datetime, end: datetime, positions: dict[int, int]
    ) -> LogDay:
        found = await logscan.read_day(self.stores.eventlog, project_id, start, end)
        table, entries = _first_per_event(found.table, found.entries)
        ids = table.column("event_id").to_pylist()
        applied = [
            event_id
            for event_id, entry in zip(ids, entries, strict=True)
            if entry.offset < positions.get(entry.partition, 0)
        ]
        return LogDay(table, entries, applied, found.read)

    async def _analytics(
        self,
        project_id: str,
        day: tuple[datetime, datetime],
        log: LogDay,
        expired: set[str],
        finding: Finding,
    ) -> None:
        """Events the store applied but lacks are put back from the log (not those past the
        retention cutoffs; none while a GDPR erasure of the project is unsettled); events
        the store holds that the log does not are reported only."""
        stores = self.stores
        stored = await asyncio.to_thread(
            counts.stored_ids, stores.analytics, project_id, log.applied
        )
        missing = sorted(set(log.applied) - stored - expired)
        if missing:
            finding.discrepancies.append(_listed("analytics_missing_events", missing))
            if finding.held_back is not None:
                finding.hold_back()
            else:
                wanted = set(missing)
                ids = log.table.column("event_id").to_pylist()
                lost = [e for e, i in zip(log.entries, ids, strict=True) if i in wanted]
                async with stores.recompute.lock:  # between two micro-batches of the processor
                    restored = await asyncio.to_thread(stores.analytics.restore, lost)
                finding.repairs["analytics_events"] = {
                    "restored": restored,
                    "event_ids": missing[:LISTED],
                }
        in_store = await asyncio.to_thread(counts.day_ids, stores.analytics, project_id, *day)
        store_only = sorted(in_store - set(log.table.column("event_id").to_pylist()))
        if store_only:
            finding.discrepancies.append(_listed("analytics_events_not_in_log", store_only))
            finding.unrepaired = True

    async def _online(
        self,
        project_id: str,
        day: tuple[datetime, datetime],
        plans: list[FeaturePlan],
        finding: Finding,
    ) -> None:
        """Entities whose state the online store lost are recomputed from the analytics
        store (after its own repair), beside the processor."""
        stores = self.stores
        if stores.online_ttl is not None:  # older entities may have expired: not damage
            day = (max(day[0], utcnow() - stores.online_ttl), day[1])
            if day[0] >= day[1]:
                return
        damaged = await asyncio.to_thread(
            online.damaged_entities, stores.analytics, stores.online, plans, project_id, day
        )
        for key, ids in damaged.items():
            finding.discrepancies.append(_listed("online_missing_entities", ids, entity_key=key))
        if damaged and finding.held_back is not None:
            finding.hold_back()
            return
        for key, ids in damaged.items():
            await stores.recompute.run(project_id, key, ids)
        if damaged:
            finding.repairs["online_entities"] = {key: ids[:LISTED] for key, ids in damaged.items()}


def _listed(kind: str, ids: list[str], **extra: str) -> dict[str, Any]:
    return {"kind": kind, **extra, "count": len(ids), "ids": ids[:LISTED]}


def _pending(
    entries: list[LogEntry], analytics: dict[int, int], online_at: dict[int, int]
) -> dict[str, int]:
    """The project's entries of the day each store has not applied yet (its lag, counted in
    the project's own events: positions are the log's, shared by every project)."""

    def behind(at: dict[int, int]) -> int:
        return sum(1 for e in entries if e.offset >= at.get(e.partition, 0))

    return {"pending_analytics": behind(analytics), "pending_online": behind(online_at)}
