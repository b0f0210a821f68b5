"""Derived features of the draft config; checked against the draft's feature values."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from dataintel.config.deployments.snapshot_repository import draft_snapshot
from dataintel.config.derived import repository
from dataintel.config.derived.schemas import (
    DerivedCreate,
    DerivedRead,
    DerivedReplace,
    DerivedUpdate,
)
from dataintel.config.derived.validation import compile_all
from dataintel.config.replace import same_identifier
from dataintel.errors import Conflict, NotFound
from dataintel.model.snapshot import DerivedSpec, model_of
from dataintel.storage.metadata.feature_models import DerivedFeature

DEFINITION = ("description", "entity_key", "expression", "enabled")


class DerivedService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list_all(self, project_id: str) -> list[DerivedRead]:
        return [self._read(r) for r in repository.list_derived(self.session, project_id)]

    def get(self, project_id: str, name: str) -> DerivedRead:
        return self._read(self._row(project_id, name))

    def create(self, project_id: str, data: DerivedCreate) -> DerivedRead:
        if repository.get(self.session, project_id, data.name) is not None:
            raise Conflict(f"derived feature '{data.name}' already exists")
        definition = data.model_dump(include=set(DEFINITION))
        self._check(project_id, DerivedSpec(name=data.name, **definition))
        version = repository.next_version(self.session, project_id, data.name)
        row = DerivedFeature(project_id=project_id, name=data.name, version=version, **definition)
        return self._read(repository.add(self.session, row))

    def update(self, project_id: str, name: str, data: DerivedUpdate) -> DerivedRead:
        row = self._row(project_id, name)
        current: dict[str, Any] = {k: getattr(row, k) for k in DEFINITION}
        merged = {**current, **data.model_dump(exclude_unset=True)}
        if merged == current:
            return self._read(row)
        self._check(project_id, DerivedSpec(name=name, **merged))
        version = repository.next_version(self.session, project_id, name)
        for key, value in merged.items():
            setattr(row, key, value)
        row.version = version
        self.session.flush()
        return self._read(row)

    def replace(self, project_id: str, name: str, data: DerivedReplace) -> DerivedRead:
        """PUT: the whole definition from the body (omitted optional fields: defaults)."""
        same_identifier("name", data.name, name)
        return self.update(project_id, name, DerivedUpdate(**data.model_dump(exclude={"name"})))

    def delete(self, project_id: str, name: str) -> None:
        repository.delete(self.session, self._row(project_id, name))

    def _row(self, project_id: str, name: str) -> DerivedFeature:
        row = repository.get(self.session, project_id, name)
        if row is None:
            raise NotFound(f"derived feature '{name}' not found")
        return row

    def _check(self, project_id: str, candidate: DerivedSpec) -> None:
        draft = draft_snapshot(self.session, project_id)
        others = [d for d in draft.derived if d.name != candidate.name]
        compile_all(draft.features, [*others, candidate])

    def _read(self, row: DerivedFeature) -> DerivedRead:
        draft = draft_snapshot(self.session, row.project_id)
        reads: list[str] = []
        for spec, compiled in compile_all(draft.features, draft.derived):
            if spec.name == row.name:
                reads = sorted(compiled.names)
        return model_of(DerivedRead, row, reads=reads)
