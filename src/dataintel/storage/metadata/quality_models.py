"""Metadata of data quality: each project's draft rules, and the results of every rule run.

The draft rules (model.quality.QualityConfig as JSON) are deployed inside the config snapshot
like the retention policy; the rule runner reads the deployed ones. ``quality_results`` is a
time series: one row per rule per run, keyed by the run's slot so that running a slot again
replaces its rows (the scheduler may run a slot twice after a crash)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dataintel.storage.metadata.models import Base
from dataintel.storage.metadata.types import JSONType, utcnow

ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


class QualityDraftRow(Base):
    """A project's draft quality rules; no row: no rules (the default)."""

    __tablename__ = "quality_drafts"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QualityResult(Base):
    """The outcome of one rule in one run."""

    __tablename__ = "quality_results"
    __table_args__ = (
        UniqueConstraint("project_id", "slot", "rule", name="uq_quality_results_slot_rule"),
        Index("ix_quality_results_rule", "project_id", "rule", "id"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(128))
    rule_type: Mapped[str] = mapped_column(String(32))
    dimension: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    dataset: Mapped[str] = mapped_column(String(128))
    pipeline: Mapped[str | None] = mapped_column(String(64), default=None)
    column: Mapped[str | None] = mapped_column(String(1100), default=None)
    run_id: Mapped[int | None] = mapped_column(BigInteger, default=None)  # the job run
    slot: Mapped[datetime]  # the run's scheduled time (or trigger time)
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    observed: Mapped[float | None] = mapped_column(default=None)
    passing: Mapped[int | None] = mapped_column(BigInteger, default=None)
    total: Mapped[int | None] = mapped_column(BigInteger, default=None)
    pass_fraction: Mapped[float | None] = mapped_column(default=None)
    weight: Mapped[float] = mapped_column(default=1.0)
    status: Mapped[str] = mapped_column(String(8))  # pass | fail | error
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
