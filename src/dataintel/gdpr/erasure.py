"""What erasing a subject means in each store the service has (docs/compliance.md).

Each step returns how many rows, entries or entities it erased. ``NotYet`` says the store
cannot act yet (the sinks have not applied the log up to the request): the runner tries again
shortly without counting a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dataintel.export.datalake.committed import next_offsets
from dataintel.export.datalake.erase import erase_subject
from dataintel.features.online.engine import Recompute
from dataintel.gdpr import repository as repo
from dataintel.model.subject import Subject
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.blob.port import BlobStore
from dataintel.storage.eventlog.port import EventLog
from dataintel.storage.metadata.engine import scrub
from dataintel.storage.online.port import EntityRef, OnlineStore


class NotYet(Exception):
    """Not a failure: the step must wait (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class Stores:
    engine: Engine
    sessions: sessionmaker[Session]
    eventlog: EventLog
    analytics: AnalyticsStore
    online: OnlineStore
    recompute: Recompute
    lake: BlobStore | None = None  # the data lake, when one is configured

    def caught_up(self, ends: Mapping[int, int]) -> bool:
        """Whether both sinks have applied the log up to ``ends``."""
        for applied in (self.analytics.positions(), self.online.positions()):
            if any(applied.get(p, 0) < end for p, end in ends.items() if end > 0):
                return False
        return True

    async def data_lake(self, subject: Subject, ends: Mapping[int, int]) -> int:
        """Files holding the subject's rows are rewritten without them, once the lake has
        committed the log up to the request (before the log's entries become tombstones,
        which the lake's export would skip)."""
        if self.lake is None:
            raise RuntimeError("the data lake is not configured in this worker")
        committed = await asyncio.to_thread(next_offsets, self.lake, set(ends))
        if any(committed.get(p, 0) < end for p, end in ends.items() if end > 0):
            raise NotYet("the data lake has not exported the log up to the request yet")
        return await asyncio.to_thread(
            erase_subject,
            self.lake,
            subject.project_id,
            {subject.user_id},
            set(subject.cart_ids),
            set(subject.session_ids),
        )

    async def event_log(self, subject: Subject, ends: Mapping[int, int]) -> int:
        if not await asyncio.to_thread(self.caught_up, ends):
            raise NotYet("the stream processor has not applied the log up to the request yet")
        return await self.eventlog.erase(subject, ends)

    async def analytics_store(self, subject: Subject) -> int:
        async with self.recompute.lock:  # between two micro-batches of the processor
            return await asyncio.to_thread(self.analytics.erase, subject)

    async def online_store(self, subject: Subject, recompute: Mapping[str, list[str]]) -> int:
        """The subject's own entities go; entities of other keys whose features counted the
        subject's events are recomputed from what remains (after the analytics step)."""
        project = subject.project_id
        refs = [EntityRef(project, "user_id", subject.user_id)]
        refs += [EntityRef(project, "cart_id", c) for c in sorted(subject.cart_ids)]
        refs += [EntityRef(project, "session_id", s) for s in sorted(subject.session_ids)]
        async with self.recompute.lock:
            deleted = await asyncio.to_thread(self.online.delete_entities, refs)
        for entity_key, ids in sorted(recompute.items()):
            await self.recompute.run(project, entity_key, ids)
        await asyncio.to_thread(self.online.scrub)
        return deleted

    def dead_letters(self, subject: Subject) -> int:
        with self.sessions.begin() as session:
            erased = repo.erase_dead_letters(session, subject.project_id, subject.values())
        scrub(self.engine, ["dead_letters"])
        return erased

    def reports(self, subject: Subject, before: datetime, request_id: str) -> int:
        """Row-level reports made before the request, and reports whose parameters name the
        subject: their files are deleted and the reports expire with the reason."""
        with self.sessions.begin() as session:
            found = repo.reports_to_erase(session, subject.project_id, subject.values(), before)
            for report in found:
                if report.file_path:
                    Path(report.file_path).unlink(missing_ok=True)
                report.state = "expired"
                report.params = {}
                report.file_path = None
                report.error = f"erased by GDPR request {request_id}"
        scrub(self.engine, ["reports"])
        return len(found)
