"""The whole config of a project as one immutable, comparable value.

A deployment stores one ConfigSnapshot; the draft (what the config API edits) is read as
one too, so "pending changes" is simply diff(active snapshot, draft snapshot).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from dataintel.config.features.schemas import Aggregation
from dataintel.config.pipelines.schemas import FieldSpec, UnknownPolicy
from dataintel.storage.metadata.feature_models import DerivedFeature
from dataintel.storage.metadata.models import Feature, Pipeline, PipelineEvent


class EventSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    enabled: bool = True
    fields: list[FieldSpec] = []

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


class PipelineSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    description: str = ""
    unknown_properties: UnknownPolicy = "allow"
    events: list[EventSpec] = []

    def event(self, name: str) -> EventSpec | None:
        return next((e for e in self.events if e.name == name), None)


class FeatureSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    pipeline_id: str
    source_event: str
    entity_key: str = "user_id"
    aggregation: Aggregation
    field: str | None = None
    windows: list[str]
    enabled: bool = True
    version: int = 1


class DerivedSpec(BaseModel):
    """A derived feature: an expression over the entity's other feature values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    entity_key: str = "user_id"
    expression: str
    enabled: bool = True
    version: int = 1


class ConfigSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pipelines: list[PipelineSpec] = []
    features: list[FeatureSpec] = []
    derived: list[DerivedSpec] = []

    def pipeline(self, pipeline_id: str) -> PipelineSpec | None:
        return next((p for p in self.pipelines if p.id == pipeline_id), None)

    def feature(self, name: str) -> FeatureSpec | None:
        return next((f for f in self.features if f.name == name), None)


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
