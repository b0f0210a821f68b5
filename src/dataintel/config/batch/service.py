"""Batch features of the draft config; checked against the draft's pipelines."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dataintel.config.batch import repository
from dataintel.config.batch.schemas import (
    BatchFeatureCreate,
    BatchFeatureRead,
    BatchFeatureReplace,
    BatchFeatureUpdate,
)
from dataintel.config.batch.validation import check_batch, taken_names
from dataintel.config.deployments.snapshot_repository import draft_snapshot
from dataintel.config.replace import same_identifier
from dataintel.errors import Conflict, InvalidInput, NotFound
from dataintel.model.batch import BatchFeatureSpec, expression_fields
from dataintel.model.snapshot import model_of
from dataintel.storage.metadata.batch_models import BatchFeature

DEFINITION = (
    "description",
    "entity_key",
    "pipeline_id",
    "source_event",
    "aggregation",
    "field",
    "expression",
    "window",
    "schedule",
    "ttl",
    "enabled",
)


class BatchFeatureService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list_all(self, project_id: str) -> list[BatchFeatureRead]:
        return [self._read(r) for r in repository.list_batch(self.session, project_id)]

    def get(self, project_id: str, name: str) -> BatchFeatureRead:
        return self._read(self._row(project_id, name))

    def create(self, project_id: str, data: BatchFeatureCreate) -> BatchFeatureRead:
        if repository.get(self.session, project_id, data.name) is not None:
            raise Conflict(f"batch feature '{data.name}' already exists")
        definition = data.model_dump(mode="json", include=set(DEFINITION))
        self._check(project_id, data.name, definition)
        version = repository.next_version(self.session, project_id, data.name)
        row = BatchFeature(project_id=project_id, name=data.name, version=version, **definition)
        return self._read(repository.add(self.session, row))

    def update(self, project_id: str, name: str, data: BatchFeatureUpdate) -> BatchFeatureRead:
        """Merge the fields the request sets (explicit nulls clear the nullable ones)."""
        row = self._row(project_id, name)
        current: dict[str, Any] = {k: getattr(row, k) for k in DEFINITION}
        merged = {**current, **data.model_dump(mode="json", exclude_unset=True)}
        if merged == current:
            return self._read(row)
        self._check(project_id, name, merged)
        version = repository.next_version(self.session, project_id, name)
        for key, value in merged.items():
            setattr(row, key, value)
        row.version = version
        self.session.flush()
        return self._read(row)

    def replace(self, project_id: str, name: str, data: BatchFeatureReplace) -> BatchFeatureRead:
        """PUT: the whole definition from the body (omitted optional fields: defaults)."""
        same_identifier("name", data.name, name)
        body = data.model_dump(exclude={"name"})
        return self.update(project_id, name, BatchFeatureUpdate(**body))

    def delete(self, project_id: str, name: str) -> None:
        repository.delete(self.session, self._row(project_id, name))

    def _row(self, project_id: str, name: str) -> BatchFeature:
        row = repository.get(self.session, project_id, name)
        if row is None:
            raise NotFound(f"batch feature '{name}' not found")
        return row

    def _check(self, project_id: str, name: str, definition: dict[str, Any]) -> BatchFeatureSpec:
        try:
            spec = BatchFeatureSpec(name=name, **definition)
        except ValueError as exc:  # a PATCH that leaves both forms, or neither
            raise InvalidInput.field(["body", "expression"], _reason(exc)) from exc
        draft = draft_snapshot(self.session, project_id)
        if name in taken_names(draft):
            raise InvalidInput.field(
                ["body", "name"], f"'{name}' is already a feature or value name"
            )
        check_batch(spec, draft.pipelines, ["body"])
        return spec

    def _read(self, row: BatchFeature) -> BatchFeatureRead:
        spec = model_of(BatchFeatureSpec, row)
        reads = [spec.field] if spec.field else []
        if spec.expression is not None:
            reads = expression_fields(spec.expression)
        return model_of(BatchFeatureRead, row, reads=reads)


def _reason(exc: ValueError) -> str:
    text = str(exc)
    marker = "Value error, "
    return text[text.index(marker) + len(marker) :].split("\n")[0] if marker in text else text
