"""ORM tables of the MetadataStore. Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import BigInteger, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dataintel.storage.metadata.types import JSONType, UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    active_version: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list[str]] = mapped_column(JSONType)
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # The pipeline /v1/events ingests into (ingest keys); null: the project's only pipeline.
    pipeline_id: Mapped[str | None] = mapped_column(String(64), default=None)


class Pipeline(Base):
    __tablename__ = "pipelines"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    unknown_properties: Mapped[str] = mapped_column(String(16), default="allow")
    active: Mapped[bool] = mapped_column(default=True)
    webhook_secret: Mapped[str] = mapped_column(String(128))
    previous_webhook_secret: Mapped[str | None] = mapped_column(String(128), default=None)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    webhook_rotated_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PipelineEvent(Base):
    __tablename__ = "pipeline_events"
    __table_args__ = (
        ForeignKeyConstraint(
            ["project_id", "pipeline_id"],
            ["pipelines.project_id", "pipelines.id"],
            ondelete="CASCADE",
        ),
    )

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Feature(Base):
    __tablename__ = "features"
    __table_args__ = (
        ForeignKeyConstraint(
            ["project_id", "pipeline_id"],
            ["pipelines.project_id", "pipelines.id"],
            ondelete="CASCADE",
        ),
    )

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    entity_key: Mapped[str] = mapped_column(String(128))
    source_event: Mapped[str] = mapped_column(String(128))
    aggregation: Mapped[str] = mapped_column(String(32))
    field: Mapped[str | None] = mapped_column(String(128), default=None)
    windows: Mapped[list[str]] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        Index("ix_deployments_project_version", "project_id", "version", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # deploy | rollback
    rollback_of: Mapped[int | None] = mapped_column(Integer, default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType)
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeadLetter(Base):
    """A rejected event: the original item, why, and what became of it (replay).

    No foreign key to pipelines: a pipeline deleted from the draft keeps receiving events
    until the deploy that removes it, and its dead letters outlive it."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_pipeline", "project_id", "pipeline_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    pipeline_id: Mapped[str] = mapped_column(String(64))
    pipeline_version: Mapped[int | None] = mapped_column(Integer, default=None)
    event_id: Mapped[str] = mapped_column(String(200))
    event: Mapped[str | None] = mapped_column(String(128), default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload: Mapped[Any] = mapped_column(JSONType)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    # ",code1,code2," of the reasons: a portable filter (LIKE '%,code,%') on both stores
    reason_codes: Mapped[str] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    replayed_at: Mapped[datetime | None] = mapped_column(default=None)


class IngestStat(Base):
    """Ingest counters per pipeline, hour of arrival (UTC) and event name, flushed in bulk."""

    __tablename__ = "ingest_stats"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    pipeline_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    event: Mapped[str] = mapped_column(String(128), primary_key=True)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    suppressed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class AnalyticsSettingsRow(Base):
    """A project's draft analytics settings (model.snapshot.AnalyticsSettings as JSON); no
    row: the defaults. Deployed like the rest of the config (inside the snapshot)."""

    __tablename__ = "analytics_settings"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
