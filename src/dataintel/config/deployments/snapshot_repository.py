"""SQL that reads a project's config as a snapshot: the draft tables, or the deployed version."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dataintel.model.aggregations import Aggregation
from dataintel.model.fields import FieldSpec
from dataintel.model.snapshot import (
    ConfigSnapshot,
    DerivedSpec,
    EventSpec,
    FeatureSpec,
    PipelineSpec,
)
from dataintel.storage.metadata.feature_models import DerivedFeature
from dataintel.storage.metadata.models import Deployment, Feature, Pipeline, PipelineEvent, Project


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


def draft_snapshot(session: Session, project_id: str) -> ConfigSnapshot:
    """The project's current (undeployed) config, in canonical order."""
    pipelines = session.scalars(
        select(Pipeline).where(Pipeline.project_id == project_id).order_by(Pipeline.id)
    ).all()
    events = session.scalars(
        select(PipelineEvent)
        .where(PipelineEvent.project_id == project_id)
        .order_by(PipelineEvent.pipeline_id, PipelineEvent.name)
    ).all()
    features = session.scalars(
        select(Feature).where(Feature.project_id == project_id).order_by(Feature.name)
    ).all()
    derived = session.scalars(
        select(DerivedFeature)
        .where(DerivedFeature.project_id == project_id)
        .order_by(DerivedFeature.name)
    ).all()
    by_pipeline: dict[str, list[EventSpec]] = {}
    for e in events:
        by_pipeline.setdefault(e.pipeline_id, []).append(
            EventSpec(
                name=e.name,
                description=e.description,
                enabled=e.enabled,
                fields=[FieldSpec.model_validate(f) for f in e.fields],
            )
        )
    return ConfigSnapshot(
        pipelines=[
            PipelineSpec(
                id=p.id,
                name=p.name,
                description=p.description,
                unknown_properties=p.unknown_properties,
                events=by_pipeline.get(p.id, []),
            )
            for p in pipelines
        ],
        features=[
            FeatureSpec(
                name=f.name,
                description=f.description,
                pipeline_id=f.pipeline_id,
                source_event=f.source_event,
                entity_key=f.entity_key,
                aggregation=Aggregation(f.aggregation),
                field=f.field,
                windows=list(f.windows),
                enabled=f.enabled,
                version=f.version,
            )
            for f in features
        ],
        derived=[
            DerivedSpec(
                name=d.name,
                description=d.description,
                entity_key=d.entity_key,
                expression=d.expression,
                enabled=d.enabled,
                version=d.version,
            )
            for d in derived
        ],
    )
