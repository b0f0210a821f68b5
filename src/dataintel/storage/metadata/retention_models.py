"""Metadata of retention: each project's draft policy, and where its runs stand.

The draft policy (model.retention.RetentionPolicy as JSON) is deployed inside the config
snapshot like the analytics settings; the runner reads the deployed one. ``retention_status``
holds one row per project the runner has worked on: the lease of the worker running it, when
it is due next, and the outcome of its last run (counts only, never a deleted value)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dataintel.storage.metadata.models import Base
from dataintel.storage.metadata.types import JSONType, utcnow


class RetentionPolicyRow(Base):
    """A project's draft retention policy; no row: keep everything (the default)."""

    __tablename__ = "retention_policies"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RetentionStatus(Base):
    """The runner's state for one project: its lease, next run and last run."""

    __tablename__ = "retention_status"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    next_run_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str | None] = mapped_column(String(16), default=None)  # of the last run
    policy_version: Mapped[int | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
