"""Feature definitions: windowed aggregations over one event of one pipeline.

Definitions are checked against the project's *draft* pipelines (the ones the config API
edits), so a feature and the event it needs can be added in one deploy. Every real change
bumps the feature's ``version``; a PATCH that changes nothing leaves it as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dataintel.config.deployments.repository import next_feature_version
from dataintel.config.features import repository
from dataintel.config.features.schemas import (
    FeatureCreate,
    FeatureRead,
    FeatureReplace,
    FeatureUpdate,
    WindowRead,
)
from dataintel.config.features.validation import check_feature
from dataintel.config.pipelines import repository as pipelines_repo
from dataintel.config.replace import same_identifier
from dataintel.errors import Conflict, NotFound
from dataintel.model.aggregations import Aggregation
from dataintel.model.snapshot import model_of
from dataintel.model.windows import format_seconds, parse_window
from dataintel.storage.metadata.models import Feature

# The columns a FeatureUpdate may change (everything a FeatureCreate sets except the name).
DEFINITION = (
    "description",
    "pipeline_id",
    "source_event",
    "entity_key",
    "aggregation",
    "field",
    "windows",
    "enabled",
)


def window_read(feature: str, window: str) -> WindowRead:
    parsed = parse_window(window)
    g = parsed.granularity_seconds
    return WindowRead(
        window=parsed.name,
        seconds=parsed.seconds,
        granularity=None if g is None else format_seconds(g),
        granularity_seconds=g,
        value_name=f"{feature}_{parsed.name}",
    )


def feature_read(row: Feature) -> FeatureRead:
    return model_of(FeatureRead, row, windows=[window_read(row.name, w) for w in row.windows])


def _definition(row: Feature) -> dict[str, Any]:
    return {key: getattr(row, key) for key in DEFINITION}


class FeatureService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list_all(self, project_id: str, pipeline_id: str | None = None) -> list[FeatureRead]:
        rows = repository.list_features(self.session, project_id, pipeline_id)
        return [feature_read(f) for f in rows]

    def get(self, project_id: str, name: str) -> FeatureRead:
        return feature_read(self._feature(project_id, name))

    def create(self, project_id: str, data: FeatureCreate) -> FeatureRead:
        if repository.get(self.session, project_id, data.name) is not None:
            raise Conflict(f"feature '{data.name}' already exists")
        definition = data.model_dump(mode="json", include=set(DEFINITION))
        self._check(project_id, definition)
        version = next_feature_version(self.session, project_id, data.name)
        row = Feature(project_id=project_id, name=data.name, version=version, **definition)
        return feature_read(repository.add(self.session, row))

    def update(self, project_id: str, name: str, data: FeatureUpdate) -> FeatureRead:
        """Apply the fields the request sets (an explicit ``"field": null`` clears it)."""
        row = self._feature(project_id, name)
        current = _definition(row)
        merged = {**current, **data.model_dump(mode="json", exclude_unset=True)}
        if merged == current:
            return feature_read(row)
        self._check(project_id, merged)
        for key, value in merged.items():
            setattr(row, key, value)
        row.version = next_feature_version(self.session, project_id, name)
        self.session.flush()
        return feature_read(row)

    def replace(self, project_id: str, name: str, data: FeatureReplace) -> FeatureRead:
        """PUT: the whole definition from the body (omitted optional fields: defaults)."""
        same_identifier("name", data.name, name)
        return self.update(project_id, name, FeatureUpdate(**data.model_dump(exclude={"name"})))

    def delete(self, project_id: str, name: str) -> None:
        repository.delete(self.session, self._feature(project_id, name))

    def _feature(self, project_id: str, name: str) -> Feature:
        row = repository.get(self.session, project_id, name)
        if row is None:
            raise NotFound(f"feature '{name}' not found")
        return row

    def _check(self, project_id: str, definition: dict[str, Any]) -> None:
        """422 naming the offending request field when the definition does not fit the
        project's draft pipelines."""
        check_feature(
            loc=["body"],
            pipeline_id=definition["pipeline_id"],
            source_event=definition["source_event"],
            entity_key=definition["entity_key"],
            aggregation=Aggregation(definition["aggregation"]),
            field=definition["field"],
            pipelines=pipelines_repo.field_types(self.session, project_id),
        )
