"""Metadata of GDPR requests: the request, its per-store tasks, the suppression list and the
outbox of ``gdpr.forget`` messages to the platform's other services.

A request names its subject in clear (``user_id``) only while it is being carried out: the
runner clears it when the request ends. Afterwards the request, its tasks and the suppression
list refer to the subject by ``subject_hash`` (HMAC-SHA-256 with the installation's secret,
``service_secrets``), which lets ingest recognise a suppressed user without storing the id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dataintel.storage.metadata.models import Base
from dataintel.storage.metadata.types import JSONType, utcnow


class GdprRequest(Base):
    """pending → running → finished | failed. ``lease_*``: the runner carrying it out."""

    __tablename__ = "gdpr_requests"
    __table_args__ = (
        Index("ix_gdpr_requests_claim", "status", "next_attempt_at"),
        Index("ix_gdpr_requests_project", "project_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    requested_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # What the runner learnt and must keep across restarts (log end offsets to wait for).
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class GdprTask(Base):
    """One store's part of a request: pending → running → finished | failed (retried with
    back-off while ``attempts`` stays under the limit)."""

    __tablename__ = "gdpr_tasks"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("gdpr_requests.id", ondelete="CASCADE"), primary_key=True
    )
    store: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    erased: Mapped[int | None] = mapped_column(Integer, default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class GdprSuppression(Base):
    """A suppressed subject of a project: ingest drops (and counts) its events."""

    __tablename__ = "gdpr_suppressions"

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GdprOutbox(Base):
    """A ``gdpr.forget`` message waiting to be delivered; deleted once delivered to every
    destination (it names the subject, which must not outlive the delivery). ``delivered``:
    the destinations done; ``topic_from``: the topic's end offsets just before the first
    send to it (a retry looks there first, so a send whose outcome a crash hid is not
    repeated); ``lease_expires_at``: a runner is delivering it."""

    __tablename__ = "gdpr_outbox"

    request_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered: Mapped[list[str]] = mapped_column(JSONType, default=list)
    topic_from: Mapped[dict[str, int] | None] = mapped_column(JSONType, default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)


class ServiceSecret(Base):
    """Secrets the installation generates for itself (e.g. the GDPR subject-hash key)."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class SubjectKey(Base):
    """A subject's data key for the Kafka log's crypto-shredding: records of the subject
    are encrypted with it; erasing the subject deletes the row, which makes them unreadable.
    ``id`` is the subject's keyed hash (no id in clear)."""

    __tablename__ = "subject_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64))  # 32 random bytes, hex
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
