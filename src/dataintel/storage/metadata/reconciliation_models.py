"""Metadata of reconciliation: one report per (project, day checked, run).

A report holds counts and identifiers only (event ids, entity ids the run repaired), never a
property value; ``day`` is the UTC day of arrival (``received_at``) it checked."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dataintel.storage.metadata.models import Base
from dataintel.storage.metadata.types import JSONType, utcnow


class ReconciliationReport(Base):
    """What one run found for one project and day, and what it repaired."""

    __tablename__ = "reconciliation_reports"
    __table_args__ = (
        UniqueConstraint("project_id", "day", "run_id", name="uq_reconciliation_run_day"),
        Index("ix_reconciliation_reports_project_day", "project_id", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    run_id: Mapped[int] = mapped_column(BigInteger)  # the scheduler's run (JobRun.id)
    status: Mapped[str] = mapped_column(String(16))  # ok | repaired | discrepant
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    discrepancies: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    repairs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
