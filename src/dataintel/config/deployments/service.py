"""Deployments: every config edit is pending until a deploy snapshots the whole project
config as an immutable version and makes it active; a rollback re-activates an old one.

The runtime reads only the active version (through ActiveConfigCache), which is invalidated
for the project as soon as the transaction that changed it commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dataintel.config.batch.validation import check_all, taken_names
from dataintel.config.deployments import repository
from dataintel.config.deployments.active import ActiveConfigCache
from dataintel.config.deployments.diff import Change, diff, summarize
from dataintel.config.deployments.schemas import (
    BackfillRead,
    DeploymentDetail,
    DeploymentPage,
    DeploymentRead,
    PendingRead,
)
from dataintel.config.deployments.snapshot_repository import draft_snapshot
from dataintel.config.derived.validation import compile_all
from dataintel.config.features.validation import check_feature
from dataintel.errors import Conflict, InvalidInput, NotFound
from dataintel.model.fields import FieldType
from dataintel.model.snapshot import ConfigSnapshot, FeatureSpec
from dataintel.storage.metadata.feature_models import FeatureBackfill
from dataintel.storage.metadata.models import Deployment, Project

Loc = list[str | int]


def field_types(snapshot: ConfigSnapshot) -> dict[str, dict[str, dict[str, FieldType]]]:
    """pipeline id -> event name -> property name -> type, as check_feature wants it."""
    return {
        p.id: {e.name: {f.name: f.type for f in e.fields} for e in p.events}
        for p in snapshot.pipelines
    }


def check_features(
    features: Sequence[FeatureSpec],
    pipelines: ConfigSnapshot,
    loc: Callable[[int, FeatureSpec], Loc],
) -> None:
    """Check every feature against the pipelines of ``pipelines`` (InvalidInput on the first
    offender, located by ``loc(index, feature)``)."""
    types = field_types(pipelines)
    for i, f in enumerate(features):
        check_feature(
            loc=loc(i, f),
            pipeline_id=f.pipeline_id,
            source_event=f.source_event,
            entity_key=f.entity_key,
            aggregation=f.aggregation,
            field=f.field,
            pipelines=types,
        )


def _read(row: Deployment, project: Project) -> DeploymentRead:
    changes = [Change.model_validate(c) for c in row.changes]
    return DeploymentRead(
        project_id=row.project_id,
        version=row.version,
        kind="rollback" if row.kind == "rollback" else "deploy",
        rollback_of=row.rollback_of,
        active=row.version == project.active_version,
        message=row.message,
        created_by=row.created_by,
        created_at=row.created_at,
        summary=summarize(changes),
        changes=changes,
    )


def _detail(
    row: Deployment, project: Project, backfill: FeatureBackfill | None = None
) -> DeploymentDetail:
    return DeploymentDetail(
        **_read(row, project).model_dump(),
        snapshot=ConfigSnapshot.model_validate(row.snapshot),
        backfill=None if backfill is None else BackfillRead.model_validate(backfill.as_dict()),
    )


class DeploymentService:
    def __init__(self, session: Session, cache: ActiveConfigCache | None = None) -> None:
        self.session = session
        self.cache = cache

    def pending(self, project: Project) -> PendingRead:
        active = repository.active_snapshot(self.session, project)
        changes = diff(active, draft_snapshot(self.session, project.id))
        return PendingRead(
            project_id=project.id,
            base_version=project.active_version,
            has_changes=bool(changes),
            summary=summarize(changes),
            changes=changes,
        )

    def deploy(self, project: Project, message: str, by: str) -> DeploymentDetail:
        project = self._lock(project)
        draft = draft_snapshot(self.session, project.id)
        changes = diff(repository.active_snapshot(self.session, project), draft)
        if not changes and project.active_version is not None:
            raise Conflict(
                f"nothing to deploy: the draft equals the active version {project.active_version}"
            )
        try:
            check_features(draft.features, draft, lambda _i, f: ["features", f.name])
            compile_all(draft.features, draft.derived, lambda d: ["derived", d.name])
            check_all(draft.batch, draft.pipelines, taken_names(draft), lambda b: ["batch", b.name])
        except InvalidInput as exc:
            loc = exc.errors[0]["loc"] if exc.errors else ["features", "?"]
            what = {
                "derived": f"derived feature '{loc[1]}' no longer compiles",
                "batch": f"batch feature '{loc[1]}' does not fit the draft",
            }.get(str(loc[0]), f"feature '{loc[1]}' does not fit the draft pipelines")
            raise InvalidInput(f"{what}: {exc.detail}", exc.errors) from exc
        return self._record(project, "deploy", draft, changes, message, by)

    def list(self, project: Project, limit: int, offset: int) -> DeploymentPage:
        rows = repository.list_deployments(self.session, project.id, limit, offset)
        return DeploymentPage(
            items=[_read(r, project) for r in rows],
            total=repository.count_deployments(self.session, project.id),
            limit=limit,
            offset=offset,
        )

    def get(self, project: Project, version: int) -> DeploymentDetail:
        backfill = self.session.get(FeatureBackfill, (project.id, version))
        return _detail(self._row(project.id, version), project, backfill)

    def rollback(
        self, project: Project, version: int, by: str, message: str | None, force: bool
    ) -> DeploymentDetail:
        project = self._lock(project)
        target = self._row(project.id, version)
        active = repository.active_snapshot(self.session, project)
        if not force:
            pending = diff(active, draft_snapshot(self.session, project.id))
            if pending:
                raise Conflict(
                    f"the draft has {len(pending)} undeployed change(s) that a rollback would "
                    "discard: deploy them first, or pass force: true to discard them"
                )
        snapshot = ConfigSnapshot.model_validate(target.snapshot)
        changes = diff(active, snapshot)
        if not changes:
            raise Conflict(
                f"version {version} has the same config as the active version "
                f"{project.active_version}: nothing to roll back"
            )
        repository.replace_draft(self.session, project.id, snapshot, keep_versions=True)
        text = message if message is not None else f"rollback to version {version}"
        return self._record(project, "rollback", snapshot, changes, text, by, rollback_of=version)

    # --- helpers ---------------------------------------------------------------------------

    def _lock(self, project: Project) -> Project:
        locked = repository.lock_project(self.session, project.id)
        if locked is None:
            raise NotFound(f"project '{project.id}' not found")
        return locked

    def _row(self, project_id: str, version: int) -> Deployment:
        row = repository.get_deployment(self.session, project_id, version)
        if row is None:
            raise NotFound(f"deployment version {version} of project '{project_id}' not found")
        return row

    def _record(
        self,
        project: Project,
        kind: Literal["deploy", "rollback"],
        snapshot: ConfigSnapshot,
        changes: Sequence[Change],
        message: str,
        by: str,
        rollback_of: int | None = None,
    ) -> DeploymentDetail:
        row = Deployment(
            project_id=project.id,
            version=repository.next_version(self.session, project.id),
            kind=kind,
            rollback_of=rollback_of,
            message=message,
            snapshot=snapshot.model_dump(mode="json"),
            changes=[c.model_dump(mode="json") for c in changes],
            created_by=by,
        )
        try:
            repository.insert_deployment(self.session, row)
        except IntegrityError as exc:
            raise Conflict(
                "another deployment of this project was made at the same time; retry"
            ) from exc
        repository.set_active_version(self.session, project, row.version)
        self._invalidate_on_commit(project.id)
        return _detail(row, project)

    def _invalidate_on_commit(self, project_id: str) -> None:
        """Drop the cached active config once the new version is visible to other sessions."""
        cache = self.cache
        if cache is None:
            return
        event.listen(
            self.session, "after_commit", lambda _s: cache.invalidate(project_id), once=True
        )
