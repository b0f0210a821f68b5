"""Ingest: from parsed request items to the EventLog, and rejected items to the dead letters.

``IngestService.ingest`` validates every item against the pipeline's deployed version,
writes the rejected ones to the dead-letter table in the request's unit of work *before*
appending the accepted ones to the log (a 2xx is sent only after both: the append returns
once the events are durable, the unit of work commits before the response), and reports
per item ``accepted`` / ``duplicate`` / ``rejected``. The log's ``AppendResult.positions``
stay in the outcome for ``?wait=processed`` and are never sent to the client: the log is
shared by every tenant, so its offsets would count other tenants' traffic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
import orjson
import structlog
from sqlalchemy.orm import Session

from dataintel.config.deployments.active import ActiveConfig, ActiveConfigCache
from dataintel.config.pipelines import repository as pipelines_repo
from dataintel.config.pipelines.webhooks import (
    DEFAULT_TOLERANCE_SECONDS,
    SIGNATURE_HEADER,
    valid_secrets,
    verify_signature,
)
from dataintel.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Unauthorized,
    Unavailable,
)
from dataintel.ingest.deadletters import repository as dead_repo
from dataintel.ingest.envelope import Reason, now_us, us_to_datetime
from dataintel.ingest.resources import IngestRuntime
from dataintel.ingest.stats import EventCounts
from dataintel.ingest.suppression import Suppressions
from dataintel.ingest.validation import PipelineValidator
from dataintel.model.snapshot import PipelineSpec
from dataintel.storage.cache import Cache
from dataintel.storage.errors import StorageError
from dataintel.storage.eventlog.port import AppendItem, EventLog

log = structlog.get_logger("dataintel.ingest")
UNKNOWN_EVENT = "(unknown)"  # stats bucket of rejected items without a known event name


@dataclass(frozen=True, slots=True)
class IngestTarget:
    project_id: str
    pipeline_id: str
    config: ActiveConfig
    spec: PipelineSpec


def resolve_target(cache: ActiveConfigCache, project_id: str, pipeline_id: str) -> IngestTarget:
    return target_in(cache.get(project_id), project_id, pipeline_id)


def target_in(config: ActiveConfig, project_id: str, pipeline_id: str) -> IngestTarget:
    """The deployed pipeline events go to: 404 when nothing is deployed or the pipeline is not
    in the deployed version, 409 when it is deactivated."""
    if config.version is None:
        raise NotFound(f"project '{project_id}' has no deployed config (or does not exist)")
    spec = config.snapshot.pipeline(pipeline_id)
    if spec is None:
        raise NotFound(
            f"pipeline '{pipeline_id}' is not in the deployed config of project '{project_id}' "
            f"(version {config.version}); deploy it first"
        )
    if not config.accepts(pipeline_id):
        raise Conflict(f"pipeline '{pipeline_id}' is deactivated: it refuses events")
    return IngestTarget(project_id, pipeline_id, config, spec)


def verify_webhook(
    session: Session,
    guard: Cache,
    target: tuple[str, str],
    header: str,
    body: bytes,
    now: datetime,
) -> None:
    """Authenticate a signed webhook call (401 otherwise): the signature verifies with the
    pipeline's current secret or, during its grace period, the previous one; ``t`` is within
    the tolerance; the same header was not seen before within the tolerance window."""
    project_id, pipeline_id = target
    row = pipelines_repo.get(session, project_id, pipeline_id)
    secrets = valid_secrets(row, now) if row is not None else []
    if not verify_signature(header, body, secrets, now, DEFAULT_TOLERANCE_SECONDS):
        raise Unauthorized(
            f"the {SIGNATURE_HEADER} header does not verify: wrong secret or body, or its "
            f"timestamp is more than {DEFAULT_TOLERANCE_SECONDS} s away from the server time"
        )
    digest = hashlib.sha256(f"{project_id}/{pipeline_id}/{header}".encode()).hexdigest()
    if not guard.add_if_absent(f"webhook-sig:{digest}", 2 * DEFAULT_TOLERANCE_SECONDS):
        raise Unauthorized(
            f"replayed {SIGNATURE_HEADER}: this signature was already used; sign every request"
        )


NOT_STORED = {"not_stored": "the event is nested too deeply to store"}


def scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


def storable(value: Any) -> Any:
    """``value`` as every metadata store holds it: PostgreSQL's JSONB and text refuse NUL
    characters (replaced by U+FFFD) and nothing serialises ~250+ levels of nesting."""
    try:
        raw = orjson.dumps(value)
    except TypeError:
        return NOT_STORED
    return scrub(value) if b"\\u0000" in raw else value


def dead_letter_row(
    validator: PipelineValidator,
    item: Any,
    event_id: str,
    name: str | None,
    reasons: list[Reason],
    received_at: datetime,
) -> dict[str, Any]:
    codes = sorted({r["code"] for r in reasons})
    return {
        "project_id": validator.project_id,
        "pipeline_id": validator.pipeline_id,
        "pipeline_version": validator.version,
        "event_id": scrub(event_id),
        "event": scrub(name) if name is not None and len(name) <= 128 else None,
        "received_at": received_at,
        "payload": storable(item),
        "reasons": storable(reasons),
        "reason_codes": "," + ",".join(codes) + ",",
        "status": "pending",
        "replayed_at": None,
    }


async def append_events(
    eventlog: EventLog, items: Sequence[AppendItem]
) -> tuple[list[bool], dict[int, int] | None]:
    """Append durably; (accepted flag per item, positions — None when the items wait in the
    local spool for the log to come back). Log failures are a 503."""
    if not items:
        return [], {}
    try:
        result = await eventlog.append(items)
    except (ServiceError, StorageError):
        raise  # mapped to a problem (a full spool: 503 + Retry-After)
    except Exception as exc:
        log.error("event log append failed", error=str(exc)[:500])
        raise Unavailable("the event log is unavailable; retry shortly") from exc
    return result.accepted, None if result.spooled else result.positions


def reason_errors(reasons: list[Reason], prefix: str) -> list[dict[str, Any]]:
    """Reasons with their pointer prefixed by the item's place in the request body."""
    return [
        {"code": r["code"], "pointer": prefix + r["pointer"], "message": r["message"]}
        for r in reasons
    ]


@dataclass(slots=True)
class IngestOutcome:
    items: list[dict[str, Any]]  # per input index: index, status, event_id, errors
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    suppressed: int = 0
    log_positions: dict[int, int] = field(default_factory=dict)
    spooled: bool = False  # the log was down: the events wait in the local spool

    def body(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "suppressed": self.suppressed,
            "items": self.items,
        }


class IngestService:
    def __init__(self, session: Session, runtime: IngestRuntime, eventlog: EventLog) -> None:
        self.session = session
        self.runtime = runtime
        self.eventlog = eventlog

    async def ingest_batch(
        self, target: IngestTarget, items: Sequence[Any], prefix: str = ""
    ) -> IngestOutcome:
        """A batch: at most ``ingest_max_batch_events`` items (413 above)."""
        limit = self.runtime.max_batch_events
        if len(items) > limit:
            raise PayloadTooLarge(
                f"a batch holds at most {limit} events; this one has {len(items)}",
                limit_events=limit,
            )
        return await self.ingest(target, items, prefix)

    async def ingest(
        self, target: IngestTarget, items: Sequence[Any], prefix: str | None = ""
    ) -> IngestOutcome:
        """Validate, dead-letter and append ``items``. ``prefix``: the pointer of the items'
        array in the body ("" for a top-level array), or None for a single event."""
        eventlog = self.eventlog
        validator = self.runtime.validators.get(target.config, target.spec)
        now = now_us()
        batch = check_items(validator, items, now, prefix)
        hashes = await self.runtime.suppressions.of(target.project_id)
        if hashes:
            drop_suppressed(self.runtime.suppressions, target.project_id, hashes, batch)
        if batch.dead:  # in the unit of work, before the append (committed before the response)
            await anyio.to_thread.run_sync(dead_repo.add_many, self.session, batch.dead)
        flags, positions = await append_events(eventlog, batch.accepted)
        results = batch.results
        for at, ok in zip(batch.accepted_at, flags, strict=True):
            if not ok:
                results[at]["status"] = "duplicate"
        self.runtime.stats.record(
            target.project_id, target.pipeline_id, now, _counts(results, batch.names)
        )
        return _tally(results, positions)


def drop_suppressed(
    suppressions: Suppressions, project_id: str, hashes: frozenset[str], batch: CheckedItems
) -> None:
    """Events of suppressed users are not appended (status ``suppressed``), and their
    rejected events are not dead-lettered."""
    flags = suppressions.suppressed_items(project_id, hashes, batch.accepted)
    kept: list[AppendItem] = []
    kept_at: list[int] = []
    for item, at, suppressed in zip(batch.accepted, batch.accepted_at, flags, strict=True):
        if suppressed:
            batch.results[at]["status"] = "suppressed"
        else:
            kept.append(item)
            kept_at.append(at)
    batch.accepted, batch.accepted_at = kept, kept_at
    batch.dead = [
        row for row in batch.dead if not suppressions.names_suppressed(project_id, hashes, row)
    ]


@dataclass(slots=True)
class CheckedItems:
    results: list[dict[str, Any]] = field(default_factory=list)  # per input index
    names: list[str] = field(default_factory=list)  # per input index, for the stats
    accepted: list[AppendItem] = field(default_factory=list)
    accepted_at: list[int] = field(default_factory=list)  # result index of each accepted
    dead: list[dict[str, Any]] = field(default_factory=list)  # dead-letter rows


def check_items(
    validator: PipelineValidator, items: Sequence[Any], now: int, prefix: str | None
) -> CheckedItems:
    """Validate every item; an event_id repeated within the request is a duplicate."""
    out = CheckedItems()
    results, names, check = out.results, out.names, validator.check
    received_at = us_to_datetime(now)
    seen: set[str] = set()
    for index, item in enumerate(items):
        log_item, event_id, name, reasons = check(item, now)
        if log_item is None:
            where = "" if prefix is None else f"{prefix}/{index}"
            results.append(_result(index, "rejected", event_id, reason_errors(reasons, where)))
            out.dead.append(dead_letter_row(validator, item, event_id, name, reasons, received_at))
            known = name is not None and name in validator.events
            names.append(name if known and name is not None else UNKNOWN_EVENT)
            continue
        if event_id in seen:
            results.append(_result(index, "duplicate", event_id, []))
        else:
            seen.add(event_id)
            out.accepted_at.append(len(results))
            out.accepted.append(log_item)
            results.append(_result(index, "accepted", event_id, []))
        names.append(name if name is not None else UNKNOWN_EVENT)
    return out


def _result(index: int, status: str, event_id: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"index": index, "status": status, "event_id": event_id, "errors": errors}


_SLOT = {"accepted": 0, "duplicate": 1, "rejected": 2, "suppressed": 3}


def _tally(results: list[dict[str, Any]], positions: dict[int, int] | None) -> IngestOutcome:
    totals = [0, 0, 0, 0]
    for r in results:
        totals[_SLOT[r["status"]]] += 1
    counts = (totals[0], totals[1], totals[2], totals[3])
    return IngestOutcome(results, *counts, positions or {}, spooled=positions is None)


def _counts(results: list[dict[str, Any]], names: list[str]) -> EventCounts:
    counts: EventCounts = {}
    for r, name in zip(results, names, strict=True):
        slot = counts.get(name)
        if slot is None:
            slot = counts[name] = [0, 0, 0, 0]
        slot[_SLOT[r["status"]]] += 1
    return counts
