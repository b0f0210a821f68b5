"""Appending to and reading the audit trail (model/audit_chain.py for the hashing).

``append`` runs in the caller's transaction, so an audited act and its entry commit
together. It first bumps the chain's head row (``UPDATE … RETURNING``): on PostgreSQL that
locks the row and on SQLite it takes the write lock, so concurrent appends to one chain
queue instead of forking it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from dataintel.model.audit_chain import GENESIS, Link, entry_hash
from dataintel.storage.metadata.audit_models import AuditEntry, AuditHead
from dataintel.storage.metadata.types import utcnow

GLOBAL_CHAIN = "_global"  # what concerns no project (never a valid project id)


def append(
    session: Session,
    chain: str,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    at = at or utcnow()
    detail = detail or {}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(AuditHead)
        .values(chain=chain, seq=0, hash=GENESIS)
        .on_conflict_do_nothing(index_elements=["chain"])
    )
    seq, prev = session.execute(
        update(AuditHead)
        .where(AuditHead.chain == chain)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash),
        execution_options={"synchronize_session": False},
    ).one()
    digest = entry_hash(chain, seq, at, actor, action, target, detail, prev)
    entry = AuditEntry(
        chain=chain,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        detail=detail,
        prev_hash=prev,
        hash=digest,
    )
    session.add(entry)
    session.execute(
        update(AuditHead).where(AuditHead.chain == chain).values(hash=digest),
        execution_options={"synchronize_session": False},
    )
    session.flush()
    return entry


def record(
    sessions: sessionmaker[Session],
    chain: str,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """``append`` in a transaction of its own (an act that wrote nothing else: a download)."""
    with sessions.begin() as session:
        append(session, chain, actor, action, target, detail)


@dataclass(frozen=True, slots=True)
class EntryFilter:
    chain: str
    action: str | None = None
    actor: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    after: int | None = None  # seq of the last entry already read


def entries(session: Session, where: EntryFilter, limit: int) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.chain == where.chain)
    if where.action is not None:
        query = query.where(AuditEntry.action == where.action)
    if where.actor is not None:
        query = query.where(AuditEntry.actor == where.actor)
    if where.start is not None:
        query = query.where(AuditEntry.at >= where.start)
    if where.end is not None:
        query = query.where(AuditEntry.at < where.end)
    if where.after is not None:
        query = query.where(AuditEntry.seq > where.after)
    return list(session.scalars(query.order_by(AuditEntry.seq).limit(limit)))


def links(session: Session, chain: str) -> Iterator[Link]:
    """Every entry of ``chain`` in seq order, streamed."""
    query = select(AuditEntry).where(AuditEntry.chain == chain).order_by(AuditEntry.seq)
    for e in session.scalars(query.execution_options(yield_per=1000)):
        yield Link(e.chain, e.seq, e.at, e.actor, e.action, e.target, e.detail, e.prev_hash, e.hash)


def head(session: Session, chain: str) -> tuple[int, str] | None:
    row = session.get(AuditHead, chain)
    return None if row is None else (row.seq, row.hash)
