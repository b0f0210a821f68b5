"""SQL that reads a project's config as a snapshot: the draft tables, or the deployed version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from dataintel.model.batch import BatchFeatureSpec
from dataintel.model.monitoring import MonitoringSettings
from dataintel.model.quality import QualityConfig
from dataintel.model.retention import RetentionPolicy
from dataintel.model.snapshot import (
    AnalyticsSettings,
    ConfigSnapshot,
    DerivedSpec,
    EventSpec,
    FeatureSpec,
    PipelineSpec,
    model_of,
)
from dataintel.storage.metadata.batch_models import BatchFeature
from dataintel.storage.metadata.feature_models import DerivedFeature
from dataintel.storage.metadata.models import (
    AnalyticsSettingsRow,
    Deployment,
    Feature,
    Pipeline,
    PipelineEvent,
    Project,
)
from dataintel.storage.metadata.monitoring_models import MonitoringSettingsRow
from dataintel.storage.metadata.quality_models import QualityDraftRow
from dataintel.storage.metadata.retention_models import RetentionPolicyRow

Row = TypeVar("Row")


def active_snapshot(
    session: Session, project_id: str
) -> tuple[int | None, ConfigSnapshot, dict[str, bool]]:
    """The deployed version (None: nothing deployed), its snapshot, and which pipelines are
    switched on (the switch is live, not part of a deployment)."""
    version = session.scalar(select(Project.active_version).where(Project.id == project_id))
    snapshot = ConfigSnapshot()
    if version is not None:
        raw = session.scalar(
            select(Deployment.snapshot).where(
                Deployment.project_id == project_id, Deployment.version == version
            )
        )
        snapshot = ConfigSnapshot.model_validate(raw or {})
    rows = session.execute(
        select(Pipeline.id, Pipeline.active).where(Pipeline.project_id == project_id)
    ).all()
    return version, snapshot, {str(pid): bool(act) for pid, act in rows}


def _draft_rows(
    session: Session, table: type[Row], project_id: str, *order: InstrumentedAttribute[Any]
) -> Sequence[Row]:
    """The project's rows of one draft table, in ``order``."""
    return session.scalars(select(table).filter_by(project_id=project_id).order_by(*order)).all()


def draft_snapshot(session: Session, project_id: str) -> ConfigSnapshot:
    """The project's current (undeployed) config, in canonical order."""
    pipelines = _draft_rows(session, Pipeline, project_id, Pipeline.id)
    events = _draft_rows(
        session, PipelineEvent, project_id, PipelineEvent.pipeline_id, PipelineEvent.name
    )
    features = _draft_rows(session, Feature, project_id, Feature.name)
    derived = _draft_rows(session, DerivedFeature, project_id, DerivedFeature.name)
    batch = _draft_rows(session, BatchFeature, project_id, BatchFeature.name)
    by_pipeline: dict[str, list[EventSpec]] = {}
    for e in events:
        by_pipeline.setdefault(e.pipeline_id, []).append(model_of(EventSpec, e))
    return ConfigSnapshot(
        pipelines=[model_of(PipelineSpec, p, events=by_pipeline.get(p.id, [])) for p in pipelines],
        features=[model_of(FeatureSpec, f) for f in features],
        derived=[model_of(DerivedSpec, d) for d in derived],
        batch=[model_of(BatchFeatureSpec, b) for b in batch],
        analytics=draft_analytics(session, project_id),
        retention=draft_retention(session, project_id),
        monitoring=draft_monitoring(session, project_id),
        quality=draft_quality(session, project_id),
    )


def draft_analytics(session: Session, project_id: str) -> AnalyticsSettings:
    """The project's draft analytics settings (the defaults when never set)."""
    raw = session.scalar(
        select(AnalyticsSettingsRow.settings).where(AnalyticsSettingsRow.project_id == project_id)
    )
    return AnalyticsSettings() if raw is None else AnalyticsSettings.model_validate(raw)


def draft_retention(session: Session, project_id: str) -> RetentionPolicy:
    """The project's draft retention policy (keep everything when never set)."""
    raw = session.scalar(
        select(RetentionPolicyRow.policy).where(RetentionPolicyRow.project_id == project_id)
    )
    return RetentionPolicy() if raw is None else RetentionPolicy.model_validate(raw)


def draft_monitoring(session: Session, project_id: str) -> MonitoringSettings:
    """The project's draft monitoring settings (the defaults when never set)."""
    raw = session.scalar(
        select(MonitoringSettingsRow.settings).where(MonitoringSettingsRow.project_id == project_id)
    )
    return MonitoringSettings() if raw is None else MonitoringSettings.model_validate(raw)


def draft_quality(session: Session, project_id: str) -> QualityConfig:
    """The project's draft quality rules (none when never set)."""
    raw = session.scalar(
        select(QualityDraftRow.config).where(QualityDraftRow.project_id == project_id)
    )
    return QualityConfig() if raw is None else QualityConfig.model_validate(raw)
