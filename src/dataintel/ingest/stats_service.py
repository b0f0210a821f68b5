"""GET /v1/events/stats: ingest counters, dead letters and processing lag of one project.

Counters come from the metadata table the stats aggregator flushes into every second (so
they are at most about a second behind, across every API replica). The processing lag is
global to the event log (all projects share it): per partition, the log's end offset minus
the analytics store's next position; null when either is not running in this process, and
null for a project-scoped credential: a backlog of the shared log counts every tenant's
traffic, so only global (operator) credentials see it.

Permission: ``events:write`` (the ingest key that sends the events can see how they fared;
counts only, no event content). Global credentials name the project with ``?project_id=``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from sqlalchemy.orm import Session

from dataintel.ingest import repository
from dataintel.ingest.schemas import (
    EventCountRead,
    EventTypeCounts,
    HourCounts,
    IngestStatsRead,
    ProcessingLag,
)
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.eventlog.port import EventLog


class StatsService:
    def __init__(
        self, session: Session, eventlog: EventLog | None, analytics: AnalyticsStore | None
    ) -> None:
        self.session = session
        self.eventlog = eventlog
        self.analytics = analytics

    async def read(
        self, project: str, pipeline_id: str | None, hours: int, with_lag: bool
    ) -> IngestStatsRead:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        since = now - timedelta(hours=hours - 1)
        counts = await anyio.to_thread.run_sync(self._counts, project, pipeline_id, since)
        lag = await self._lag() if with_lag else None
        return IngestStatsRead(
            project_id=project,
            pipeline_id=pipeline_id,
            since=since,
            processing_lag=lag,
            **counts,
        )

    def _counts(self, project_id: str, pipeline_id: str | None, since: datetime) -> dict[str, Any]:
        by_event = [
            EventTypeCounts(
                event=r.event,
                accepted=r.accepted,
                duplicate=r.duplicate,
                rejected=r.rejected,
                suppressed=r.suppressed,
            )
            for r in repository.counts_by_event(self.session, project_id, pipeline_id, since)
        ]
        by_hour = [
            HourCounts(
                hour=r.hour,
                accepted=r.accepted,
                duplicate=r.duplicate,
                rejected=r.rejected,
                suppressed=r.suppressed,
            )
            for r in repository.counts_by_hour(self.session, project_id, pipeline_id, since)
        ]
        totals = EventCountRead(
            accepted=sum(e.accepted for e in by_event),
            duplicate=sum(e.duplicate for e in by_event),
            rejected=sum(e.rejected for e in by_event),
            suppressed=sum(e.suppressed for e in by_event),
        )
        dead = repository.dead_letters_by_status(self.session, project_id, pipeline_id)
        statuses = ("pending", "replayed", "rejected_again")
        return {
            "totals": totals,
            "by_event": by_event,
            "by_hour": by_hour,
            "dead_letters": {s: dead.get(s, 0) for s in statuses},
        }

    async def _lag(self) -> ProcessingLag | None:
        if self.eventlog is None or self.analytics is None:
            return None
        ends = await self.eventlog.end_offsets()
        applied = await anyio.to_thread.run_sync(self.analytics.positions)
        partitions = {str(p): max(0, end - applied.get(p, 0)) for p, end in sorted(ends.items())}
        return ProcessingLag(total=sum(partitions.values()), partitions=partitions)
