"""Metadata of batch features: their draft definitions and the runs that computed them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dataintel.storage.metadata.models import Base
from dataintel.storage.metadata.types import utcnow


class BatchFeature(Base):
    """A feature computed on a schedule in the analytics store (draft config)."""

    __tablename__ = "batch_features"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    entity_key: Mapped[str] = mapped_column(String(128))
    pipeline_id: Mapped[str | None] = mapped_column(String(64), default=None)
    source_event: Mapped[str | None] = mapped_column(String(128), default=None)
    aggregation: Mapped[str | None] = mapped_column(String(32), default=None)
    field: Mapped[str | None] = mapped_column(String(128), default=None)
    expression: Mapped[str | None] = mapped_column(Text, default=None)
    window: Mapped[str] = mapped_column(String(16))
    schedule: Mapped[str] = mapped_column(String(16))
    ttl: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BatchFeatureRun(Base):
    """One computation of a batch feature version at ``computed_at`` (the job's slot): its
    values are in the online store (the latest run) and the analytics store (every run)."""

    __tablename__ = "batch_feature_runs"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    feature: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(primary_key=True)
    entities: Mapped[int] = mapped_column(BigInteger, default=0)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)
