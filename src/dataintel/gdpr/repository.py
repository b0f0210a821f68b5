"""All metadata SQL of the GDPR plane: requests and their per-store tasks (a leased queue,
like the reports'), the suppression list, the forget outbox, the installation's secret, and
the erasure of the subject's dead letters and row-level reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Text, and_, cast, delete, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from dataintel.storage.metadata.gdpr_models import (
    GdprOutbox,
    GdprRequest,
    GdprSuppression,
    GdprTask,
)
from dataintel.storage.metadata.models import DeadLetter
from dataintel.storage.metadata.report_models import Report

PENDING, RUNNING, FINISHED, FAILED = "pending", "running", "finished", "failed"
ROW_LEVEL_REPORTS = ("events", "custom")  # report kinds whose files list single events


def add_request(session: Session, request: GdprRequest, stores: Sequence[str]) -> None:
    session.add(request)
    session.flush()
    for position, store in enumerate(stores):
        session.add(GdprTask(request_id=request.id, store=store, position=position))
    session.flush()


def get_request(session: Session, project_id: str, request_id: str) -> GdprRequest | None:
    return session.scalar(
        select(GdprRequest).where(
            GdprRequest.id == request_id, GdprRequest.project_id == project_id
        )
    )


def requests(
    session: Session, project_id: str, limit: int, subject_hash: str | None = None
) -> list[GdprRequest]:
    query = select(GdprRequest).where(GdprRequest.project_id == project_id)
    if subject_hash is not None:
        query = query.where(GdprRequest.subject_hash == subject_hash)
    order = (GdprRequest.created_at.desc(), GdprRequest.id.desc())
    return list(session.scalars(query.order_by(*order).limit(limit)))


def tasks(session: Session, request_ids: Iterable[str]) -> dict[str, list[GdprTask]]:
    ids = list(request_ids)
    found: dict[str, list[GdprTask]] = {i: [] for i in ids}
    query = select(GdprTask).where(GdprTask.request_id.in_(ids)).order_by(GdprTask.position)
    for task in session.scalars(query):
        found[task.request_id].append(task)
    return found


def claim(session: Session, owner: str, now: datetime, lease_until: datetime) -> str | None:
    """Take the oldest request that is due and not held by a live lease."""
    due = and_(
        GdprRequest.status.in_((PENDING, RUNNING)),
        GdprRequest.next_attempt_at <= now,
        or_(GdprRequest.lease_owner.is_(None), GdprRequest.lease_expires_at < now),
    )
    if session.scalar(select(GdprRequest.id).where(due).limit(1)) is None:
        return None
    pick = (
        select(GdprRequest.id)
        .where(due)
        .order_by(GdprRequest.created_at, GdprRequest.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    taken: str | None = session.scalar(
        update(GdprRequest)
        .where(GdprRequest.id == pick)
        .values(lease_owner=owner, lease_expires_at=lease_until)
        .returning(GdprRequest.id)
        .execution_options(synchronize_session=False)
    )
    return taken


def leases_of_host(session: Session, host: str) -> list[tuple[str, str]]:
    """(request id, lease owner) of the leases held by processes of ``host``."""
    query = select(GdprRequest.id, GdprRequest.lease_owner).where(
        GdprRequest.lease_owner.startswith(f"{host}:", autoescape=True)
    )
    return [(str(i), str(o)) for i, o in session.execute(query)]


def release(session: Session, request_id: str) -> None:
    session.execute(
        update(GdprRequest)
        .where(GdprRequest.id == request_id)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


# --- suppression ------------------------------------------------------------------------


def suppress(session: Session, project_id: str, subject_hash: str, request_id: str) -> None:
    if session.get(GdprSuppression, (project_id, subject_hash)) is None:
        session.add(
            GdprSuppression(project_id=project_id, subject_hash=subject_hash, request_id=request_id)
        )
        session.flush()


def unsuppress(session: Session, project_id: str, subject_hash: str) -> bool:
    done = session.execute(
        delete(GdprSuppression).where(
            GdprSuppression.project_id == project_id, GdprSuppression.subject_hash == subject_hash
        )
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def is_suppressed(session: Session, project_id: str, subject_hash: str) -> bool:
    return session.get(GdprSuppression, (project_id, subject_hash)) is not None


# --- outbox -----------------------------------------------------------------------------


def enqueue(session: Session, request_id: str, payload: dict[str, object]) -> None:
    if session.get(GdprOutbox, request_id) is None:
        session.add(GdprOutbox(request_id=request_id, payload=payload))
        session.flush()


def claim_messages(
    session: Session, now: datetime, lease_until: datetime, limit: int
) -> list[GdprOutbox]:
    """Messages due and not being delivered by a live lease, now leased until ``lease_until``."""
    due = and_(
        GdprOutbox.next_attempt_at <= now,
        or_(GdprOutbox.lease_expires_at.is_(None), GdprOutbox.lease_expires_at < now),
    )
    query = select(GdprOutbox).where(due).order_by(GdprOutbox.created_at).limit(limit)
    found = list(session.scalars(query.with_for_update(skip_locked=True)))
    for message in found:
        message.lease_expires_at = lease_until
    session.flush()
    return found


def delivered(session: Session, request_id: str) -> None:
    session.execute(delete(GdprOutbox).where(GdprOutbox.request_id == request_id))


def undelivered(session: Session, request_id: str, error: str, retry_at: datetime) -> None:
    session.execute(
        update(GdprOutbox)
        .where(GdprOutbox.request_id == request_id)
        .values(
            attempts=GdprOutbox.attempts + 1,
            error=error[:2000],
            next_attempt_at=retry_at,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )


# --- erasure of what the metadata store holds about a subject ----------------------------


def _mentions(
    column: InstrumentedAttribute[Any], values: Iterable[str]
) -> list[ColumnElement[bool]]:
    """Conditions: the JSON column holds one of ``values`` as a JSON string."""
    return [cast(column, Text).contains(orjson.dumps(v).decode()) for v in sorted(values)]


def dead_letters_of(session: Session, project_id: str, values: Iterable[str]) -> list[DeadLetter]:
    terms = _mentions(DeadLetter.payload, values)
    query = select(DeadLetter).where(DeadLetter.project_id == project_id, or_(*terms))
    return list(session.scalars(query.order_by(DeadLetter.id)))


def erase_dead_letters(session: Session, project_id: str, values: Iterable[str]) -> int:
    terms = _mentions(DeadLetter.payload, values)
    done = session.execute(
        delete(DeadLetter).where(DeadLetter.project_id == project_id, or_(*terms))
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def reports_to_erase(
    session: Session, project_id: str, values: Iterable[str], before: datetime
) -> list[Report]:
    """Row-level reports made before ``before``, and any report whose parameters name the
    subject."""
    row_level = and_(Report.kind.in_(ROW_LEVEL_REPORTS), Report.created_at <= before)
    query = select(Report).where(
        Report.project_id == project_id, or_(row_level, *_mentions(Report.params, values))
    )
    return list(session.scalars(query))
