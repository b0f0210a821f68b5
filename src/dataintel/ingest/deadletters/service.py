"""Dead letters: list them, and replay them against the now-deployed pipeline version.

A replay re-validates each letter's original payload with its ORIGINAL event_id (the one
the client sent, or the one generated when it arrived), as if it arrived now: valid ones are
appended to the log (the log's dedup on event_id means a letter replayed twice, or an event
that made it in meanwhile, is never stored twice) and become ``replayed``; the others become
``rejected_again`` with the new reasons. Letters already ``replayed`` are never replayed
again. The service runs in a worker thread; only the append hops onto the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio.from_thread
from sqlalchemy.orm import Session

from dataintel.api.types import INT32_MAX
from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.config.pipelines import repository as pipelines_repo
from dataintel.errors import InvalidInput, NotFound
from dataintel.ingest.deadletters import repository
from dataintel.ingest.deadletters.repository import DeadLetterFilter
from dataintel.ingest.deadletters.schemas import (
    DeadLetterPage,
    DeadLetterRead,
    DeadLetterReplay,
    ReplayItem,
    ReplayRead,
)
from dataintel.ingest.envelope import now_us, us_to_datetime
from dataintel.ingest.resources import IngestRuntime
from dataintel.ingest.schemas import ItemError
from dataintel.ingest.service import append_events, resolve_target, scrub, storable
from dataintel.ingest.validation import Checked
from dataintel.storage.eventlog.port import AppendItem, EventLog
from dataintel.storage.metadata.models import DeadLetter


def to_read(row: DeadLetter) -> DeadLetterRead:
    return DeadLetterRead.model_validate(row, from_attributes=True)


def parse_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not (cursor.isascii() and cursor.isdigit()) or not 1 <= int(cursor) <= INT32_MAX:
        raise InvalidInput.field(["query", "cursor"], "not a cursor returned by this endpoint")
    return int(cursor)


class DeadLetterService:
    def __init__(
        self,
        session: Session,
        cache: ActiveConfigCache,
        runtime: IngestRuntime,
        eventlog: EventLog,
    ) -> None:
        self.session = session
        self.cache = cache
        self.runtime = runtime
        self.eventlog = eventlog

    def _known_pipeline(self, project_id: str, pipeline_id: str) -> None:
        """404 unless the pipeline is in the draft or in the deployed version."""
        if pipelines_repo.get(self.session, project_id, pipeline_id) is not None:
            return
        if self.cache.get(project_id).snapshot.pipeline(pipeline_id) is None:
            raise NotFound(f"pipeline '{pipeline_id}' not found")

    def list(
        self,
        project_id: str,
        pipeline_id: str,
        where: DeadLetterFilter,
        cursor: str | None,
        limit: int,
    ) -> DeadLetterPage:
        self._known_pipeline(project_id, pipeline_id)
        before = parse_cursor(cursor)
        rows = repository.page(self.session, project_id, pipeline_id, where, before, limit)
        more = len(rows) > limit
        rows = rows[:limit]
        return DeadLetterPage(
            items=[to_read(r) for r in rows],
            next_cursor=str(rows[-1].id) if more else None,
            limit=limit,
        )

    def replay(self, project_id: str, pipeline_id: str, req: DeadLetterReplay) -> ReplayRead:
        """Must run in a worker thread of the app's event loop (a sync endpoint)."""
        target = resolve_target(self.cache, project_id, pipeline_id)
        where = DeadLetterFilter(
            statuses=req.status,
            event=req.event,
            reason=req.reason,
            since=req.since,
            until=req.until,
            ids=req.ids or (),
        )
        rows = repository.oldest_first(self.session, project_id, pipeline_id, where, req.limit)
        more = len(rows) > req.limit
        rows = rows[: req.limit]
        validator = self.runtime.validators.get(target.config, target.spec)
        now = now_us()
        checked = [validator.check(_with_id(r), now) for r in rows]
        first = _first_of_each_event(checked)
        to_append = [item for i in first if (item := checked[i][0]) is not None]
        flags = self._append(to_append)
        outcome = dict(zip(first, flags, strict=True))
        items: list[ReplayItem] = []
        replayed: dict[str, int] = {}
        for at, (row, (log_item, _, name, reasons)) in enumerate(zip(rows, checked, strict=True)):
            if log_item is None:
                _reject_again(row, validator.version, name, reasons)
                errors = [ItemError.model_validate(r) for r in reasons]
                items.append(
                    ReplayItem(id=row.id, event_id=row.event_id, status="rejected", errors=errors)
                )
                continue
            status = "accepted" if outcome.get(at) else "duplicate"
            row.status, row.replayed_at = "replayed", us_to_datetime(now)
            items.append(ReplayItem(id=row.id, event_id=row.event_id, status=status, errors=[]))
            if status == "accepted" and name is not None:
                replayed[name] = replayed.get(name, 0) + 1
        repository.flush(self.session)
        if replayed:  # events that entered the log count as accepted (at replay time)
            counts = {name: [n, 0, 0] for name, n in replayed.items()}
            self.runtime.stats.record(project_id, pipeline_id, now, counts)
        return _replay_read(validator.version, items, more)

    def _append(self, events: Sequence[AppendItem]) -> Sequence[bool]:
        """Accepted flag per event. The log positions stay here: the log is shared by every
        tenant, so its offsets would count other tenants' traffic."""
        if not events:
            return []
        flags, _ = anyio.from_thread.run(append_events, self.eventlog, events)
        return flags


def _first_of_each_event(checked: Sequence[Checked]) -> list[int]:
    """Indexes of the valid letters to append: the first of each event_id (the same event
    dead-lettered twice is stored once; the later copies are duplicates)."""
    seen: set[str] = set()
    first: list[int] = []
    for at, (log_item, event_id, _, _) in enumerate(checked):
        if log_item is not None and event_id not in seen:
            seen.add(event_id)
            first.append(at)
    return first


def _with_id(row: DeadLetter) -> Any:
    """The original payload with the letter's event_id (a generated one when the client sent
    none or an unusable one)."""
    payload = row.payload
    if isinstance(payload, dict):
        return {**payload, "event_id": row.event_id}
    return payload


def _reject_again(row: DeadLetter, version: int, name: str | None, reasons: list[Any]) -> None:
    row.status = "rejected_again"
    row.pipeline_version = version
    row.reasons = storable(reasons)
    row.reason_codes = "," + ",".join(sorted({r["code"] for r in reasons})) + ","
    if name is not None and len(name) <= 128:
        row.event = scrub(name)


def _replay_read(version: int, items: list[ReplayItem], more: bool) -> ReplayRead:
    totals = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for item in items:
        totals[item.status] += 1
    return ReplayRead(
        pipeline_version=version,
        items=items,
        has_more=more,
        **totals,
    )
