"""Metadata of the feature engine: the backfill of each deployed config version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dataintel.storage.metadata.models import Base
from dataintel.storage.metadata.types import JSONType, utcnow


class FeatureBackfill(Base):
    """Building the online state of a deployment's new feature versions from history."""

    __tablename__ = "feature_backfills"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    deployment_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # running | done | failed
    fields: Mapped[list[str]] = mapped_column(JSONType)
    events_total: Mapped[int] = mapped_column(BigInteger, default=0)
    events_done: Mapped[int] = mapped_column(BigInteger, default=0)
    entities: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "fields": list(self.fields),
            "events_total": self.events_total,
            "events_done": self.events_done,
            "entities": self.entities,
            "error": self.error,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }


class DerivedFeature(Base):
    """A feature computed at serving time from other feature values (draft config)."""

    __tablename__ = "derived_features"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    entity_key: Mapped[str] = mapped_column(String(128))
    expression: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
