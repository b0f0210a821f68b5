"""Metadata of the audit trail: hash-chained entries, one chain per project (and one for
what concerns no project), and each chain's head.

No foreign key to ``projects``: a project's trail outlives the project (deleting it is an
audited act itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from dataintel.storage.metadata.models import Base
from dataintel.storage.metadata.types import JSONType


class AuditEntry(Base):
    """One audited act. ``hash`` = SHA-256 of the entry's fields and ``prev_hash`` (the hash
    of the chain's entry ``seq - 1``; 64 zeros for the first), see audit/chain.py."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_chain_at", "chain", "at"),)

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(400), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The last entry of a chain: appends lock this row, so a chain never forks, and
    ``verify`` notices entries cut off its end."""

    __tablename__ = "audit_heads"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
