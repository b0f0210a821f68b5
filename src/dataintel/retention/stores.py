"""What applying a retention policy means in each store (docs/compliance.md, "Retention").

Each step returns how many rows, entries or files it deleted. Events expire by event time,
per event name; dead letters by when they were received; reports by when they were asked
for. The online store holds aggregated tiles, not events: its windows age out by themselves
and lifetime aggregates stay (they are not raw events)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dataintel.export.datalake.expire import expire_events
from dataintel.model.retention import EventCutoffs
from dataintel.retention import repository as repo
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.blob.port import BlobStore
from dataintel.storage.eventlog.port import EventLog
from dataintel.storage.metadata.engine import scrub
from dataintel.storage.online.port import OnlineStore

EXPIRED_BY_POLICY = "expired by the project's retention policy"


@dataclass(frozen=True, slots=True)
class Stores:
    engine: Engine
    sessions: sessionmaker[Session]
    eventlog: EventLog
    analytics: AnalyticsStore
    online: OnlineStore
    lock: asyncio.Lock  # the processor's: no micro-batch is applied while it is held
    reports_dir: Path
    lake: BlobStore | None = None  # the data lake, when one is configured

    async def analytics_store(self, project_id: str, cutoffs: EventCutoffs) -> int:
        async with self.lock:
            return await asyncio.to_thread(self.analytics.delete_events_before, project_id, cutoffs)

    async def event_log(self, project_id: str, cutoffs: EventCutoffs) -> int:
        """Only entries every sink has applied become tombstones (the others on a later
        run): a tombstone is never replayed."""
        below = self.applied()
        return await self.eventlog.expire(project_id, cutoffs, below)

    def applied(self) -> dict[int, int]:
        """Per partition, the lowest next offset of the two sinks."""
        analytics, online = self.analytics.positions(), self.online.positions()
        return {p: min(o, online.get(p, 0)) for p, o in analytics.items()}

    async def data_lake(self, project_id: str, cutoffs: EventCutoffs) -> int:
        if self.lake is None:
            return 0
        return await asyncio.to_thread(expire_events, self.lake, project_id, cutoffs)

    def dead_letters(self, project_id: str, before: datetime) -> int:
        with self.sessions.begin() as session:
            deleted = repo.delete_dead_letters(session, project_id, before)
        if deleted:
            scrub(self.engine, ["dead_letters"])
        return deleted

    def reports(self, project_id: str, before: datetime) -> int:
        """Finished reports made before ``before`` expire: their files (and what interrupted
        runs left) are deleted."""
        with self.sessions.begin() as session:
            found = repo.reports_to_expire(session, project_id, before)
            for report in found:
                for leftover in self.reports_dir.glob(f"{report.id}.*"):
                    leftover.unlink(missing_ok=True)
                if report.file_path:
                    Path(report.file_path).unlink(missing_ok=True)
                report.state, report.file_path, report.error = "expired", None, EXPIRED_BY_POLICY
        if found:
            scrub(self.engine, ["reports"])
        return len(found)
