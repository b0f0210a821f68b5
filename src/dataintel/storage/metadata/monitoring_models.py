"""Metadata of monitoring (quality plane, docs/quality.md): each project's draft monitoring
settings, its alerts and their notification outbox, the hourly metric series the anomaly
detector watches with each evaluation, and the daily feature statistics with drift."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dataintel.storage.metadata.models import Base
from dataintel.storage.metadata.types import JSONType, utcnow

_PROJECT = "projects.id"


class MonitoringSettingsRow(Base):
    """A project's draft monitoring settings; no row: the defaults."""

    __tablename__ = "monitoring_settings"

    project_id: Mapped[str] = mapped_column(
        ForeignKey(_PROJECT, ondelete="CASCADE"), primary_key=True
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QualityAlert(Base):
    """One incident: open → acknowledged → resolved, one row per fingerprint while open."""

    __tablename__ = "quality_alerts"
    __table_args__ = (
        Index("ix_quality_alerts_project_status", "project_id", "status"),
        Index("ix_quality_alerts_project_fingerprint", "project_id", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey(_PROJECT, ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))  # open | acknowledged | resolved
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))  # warning | critical
    source: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolution: Mapped[str | None] = mapped_column(String(32), default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(200), default=None)


class AlertNotification(Base):
    """A notification waiting to be POSTed (leased, retried with back-off, deleted once
    delivered)."""

    __tablename__ = "quality_alert_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey(_PROJECT, ondelete="CASCADE"), index=True)
    alert_id: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetricPoint(Base):
    """One hourly bucket of a watched metric (recomputed by each run: an upsert)."""

    __tablename__ = "quality_metric_points"

    project_id: Mapped[str] = mapped_column(
        ForeignKey(_PROJECT, ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(300), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    support: Mapped[float] = mapped_column(Float, default=0.0)
    anomalous: Mapped[bool] = mapped_column(Boolean, default=False)


class MetricEvaluation(Base):
    """The verdict on one bucket of one metric (one row per bucket: a re-run replaces it)."""

    __tablename__ = "quality_evaluations"

    project_id: Mapped[str] = mapped_column(
        ForeignKey(_PROJECT, ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(300), primary_key=True)
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    status: Mapped[str] = mapped_column(String(16))
    expected: Mapped[float | None] = mapped_column(Float, default=None)
    spread: Mapped[float | None] = mapped_column(Float, default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    baseline: Mapped[int] = mapped_column(Integer, default=0)
    evaluated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeatureStatistics(Base):
    """A feature's source values on one UTC day: count, nulls, mean, quantiles, histogram,
    and its drift against the reference window."""

    __tablename__ = "feature_statistics"

    project_id: Mapped[str] = mapped_column(
        ForeignKey(_PROJECT, ondelete="CASCADE"), primary_key=True
    )
    feature: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    nulls: Mapped[int] = mapped_column(BigInteger, default=0)
    mean: Mapped[float | None] = mapped_column(Float, default=None)
    quantiles: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    histogram: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    drift: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
