"""Metadata of the scheduler: one row per run of a job for a project (docs/adr/0012).

A scheduled run's ``slot_key`` is its slot's time (ISO, UTC); a manual run's is ``m:`` and a
random id. The unique (job, project, slot_key) is what makes a slot run once: every worker
inserts the slot's row with ON CONFLICT DO NOTHING, and one of them claims it. ``fence``
grows with every claim; a holder writes its outcome only while the fence is still its own,
so a worker that lost its lease (paused, partitioned) cannot overwrite its successor's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dataintel.storage.metadata.models import Base
from dataintel.storage.metadata.types import JSONType, utcnow

PENDING, RUNNING, FINISHED, FAILED = "pending", "running", "finished", "failed"


class JobRunRow(Base):
    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job", "project_id", "slot_key", name="uq_job_runs_slot"),
        Index("ix_job_runs_claimable", "status", "lease_expires_at"),
        Index("ix_job_runs_project", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    slot_key: Mapped[str] = mapped_column(String(64))
    slot: Mapped[datetime] = mapped_column()
    manual: Mapped[bool] = mapped_column(default=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)  # claims; > 1: a holder died
    fence: Mapped[int] = mapped_column(default=0)
    owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
