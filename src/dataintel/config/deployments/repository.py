"""SQL for deployments, and for rewriting the draft config tables to equal a snapshot."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dataintel.model.fields import FieldSpec
from dataintel.model.monitoring import MonitoringSettings
from dataintel.model.quality import QualityConfig
from dataintel.model.retention import RetentionPolicy
from dataintel.model.snapshot import AnalyticsSettings, ConfigSnapshot, FeatureSpec, model_of
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


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# --- deployments -------------------------------------------------------------------------


def lock_project(session: Session, project_id: str) -> Project | None:
    """The project row, locked until the transaction ends and re-read from the database.

    A no-op UPDATE takes the lock: a row lock on PostgreSQL, the database write lock on
    SQLite (where SELECT ... FOR UPDATE does nothing). Concurrent deploys of one project so
    run one after the other, and each sees what the previous one committed.
    """
    session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(active_version=Project.active_version)
        .execution_options(synchronize_session=False)
    )
    stmt = select(Project).where(Project.id == project_id)
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


def next_version(session: Session, project_id: str) -> int:
    stmt = select(func.max(Deployment.version)).where(Deployment.project_id == project_id)
    return int(session.scalar(stmt) or 0) + 1


def insert_deployment(session: Session, deployment: Deployment) -> Deployment:
    """Add and flush; a concurrent insert of the same version raises IntegrityError here."""
    session.add(deployment)
    session.flush()
    return deployment


def set_active_version(session: Session, project: Project, version: int) -> None:
    project.active_version = version
    session.flush()


def get_deployment(session: Session, project_id: str, version: int) -> Deployment | None:
    stmt = select(Deployment).where(
        Deployment.project_id == project_id, Deployment.version == version
    )
    return session.scalars(stmt).one_or_none()


def list_deployments(
    session: Session, project_id: str, limit: int, offset: int
) -> Sequence[Deployment]:
    stmt = (
        select(Deployment)
        .where(Deployment.project_id == project_id)
        .order_by(Deployment.version.desc())
        .limit(limit)
        .offset(offset)
    )
    return session.scalars(stmt).all()


def count_deployments(session: Session, project_id: str) -> int:
    stmt = select(func.count()).select_from(Deployment).where(Deployment.project_id == project_id)
    return int(session.scalar(stmt) or 0)


def active_snapshot(session: Session, project: Project) -> ConfigSnapshot:
    """The config in force; empty when nothing has been deployed."""
    if project.active_version is None:
        return ConfigSnapshot()
    row = get_deployment(session, project.id, project.active_version)
    return ConfigSnapshot.model_validate(row.snapshot) if row is not None else ConfigSnapshot()


# --- feature versions --------------------------------------------------------------------


def _definition(f: FeatureSpec) -> dict[str, Any]:
    return f.model_dump(mode="json", exclude={"version"})


def highest_feature_versions(session: Session, project_id: str) -> dict[str, int]:
    """Per feature name, the highest version it has had in the draft or in any deployment,
    so a changed or re-created definition never reuses a version number."""
    seen: dict[str, int] = {}
    rows = session.execute(
        select(Feature.name, Feature.version).where(Feature.project_id == project_id)
    ).all()
    snapshots = session.scalars(
        select(Deployment.snapshot).where(Deployment.project_id == project_id)
    ).all()
    pairs = [(str(n), int(v)) for n, v in rows]
    for snap in snapshots:
        pairs += [(str(f["name"]), int(f.get("version", 1))) for f in snap.get("features", [])]
    for name, version in pairs:
        seen[name] = max(seen.get(name, 0), version)
    return seen


def resolve_feature_versions(
    session: Session, project_id: str, snapshot: ConfigSnapshot
) -> ConfigSnapshot:
    """``snapshot`` with each feature's version set: the draft's version when the definition
    is unchanged, else one above the highest version the name has ever had (1 when new)."""
    draft = {
        f.name: f for f in session.scalars(select(Feature).where(Feature.project_id == project_id))
    }
    history: dict[str, int] | None = None
    features: list[FeatureSpec] = []
    for spec in snapshot.features:
        row = draft.get(spec.name)
        if row is not None and _definition(spec) == _definition(model_of(FeatureSpec, row)):
            features.append(spec.model_copy(update={"version": row.version}))
            continue
        if history is None:
            history = highest_feature_versions(session, project_id)
        features.append(spec.model_copy(update={"version": history.get(spec.name, 0) + 1}))
    return snapshot.model_copy(update={"features": features})


# --- the draft -----------------------------------------------------------------------------


def _assign(row: Any, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def _write_pipelines(session: Session, project_id: str, snapshot: ConfigSnapshot) -> list[Any]:
    rows = {
        p.id: p for p in session.scalars(select(Pipeline).where(Pipeline.project_id == project_id))
    }
    for spec in snapshot.pipelines:
        values = {
            "name": spec.name,
            "description": spec.description,
            "unknown_properties": spec.unknown_properties,
        }
        row = rows.pop(spec.id, None)
        if row is None:
            session.add(
                Pipeline(
                    project_id=project_id,
                    id=spec.id,
                    webhook_secret=new_webhook_secret(),
                    active=True,
                    **values,
                )
            )
        else:
            _assign(row, values)
    session.flush()
    return list(rows.values())


def _write_events(session: Session, project_id: str, snapshot: ConfigSnapshot) -> list[Any]:
    rows = {
        (e.pipeline_id, e.name): e
        for e in session.scalars(
            select(PipelineEvent).where(PipelineEvent.project_id == project_id)
        )
    }
    for pipeline in snapshot.pipelines:
        for spec in pipeline.events:
            row = rows.pop((pipeline.id, spec.name), None)
            values = {"description": spec.description, "enabled": spec.enabled}
            fields = [f.model_dump(mode="json") for f in spec.fields]
            if row is None:
                session.add(
                    PipelineEvent(
                        project_id=project_id,
                        pipeline_id=pipeline.id,
                        name=spec.name,
                        fields=fields,
                        **values,
                    )
                )
                continue
            _assign(row, values)
            if [FieldSpec.model_validate(f) for f in row.fields] != spec.fields:
                row.fields = fields
    session.flush()
    return list(rows.values())


def _write_features(session: Session, project_id: str, snapshot: ConfigSnapshot) -> list[Any]:
    rows = {
        f.name: f for f in session.scalars(select(Feature).where(Feature.project_id == project_id))
    }
    for spec in snapshot.features:
        values = spec.model_dump(mode="json", exclude={"name"})
        row = rows.pop(spec.name, None)
        if row is None:
            session.add(Feature(project_id=project_id, name=spec.name, **values))
        else:
            _assign(row, values)
    session.flush()
    return list(rows.values())


def replace_draft(
    session: Session, project_id: str, snapshot: ConfigSnapshot, *, keep_versions: bool = False
) -> ConfigSnapshot:
    """Make the draft tables equal ``snapshot`` and return what was written.

    Existing pipelines keep their webhook secrets and ``active`` flag; new ones get a fresh
    secret. Feature versions are resolved (see resolve_feature_versions) unless
    ``keep_versions`` (a rollback restores a deployed snapshot exactly). Writes go parents
    first and deletions children first, so no foreign key is ever dangling.
    """
    if not keep_versions:
        snapshot = resolve_feature_versions(session, project_id, snapshot)
    stale_pipelines = _write_pipelines(session, project_id, snapshot)
    stale_events = _write_events(session, project_id, snapshot)
    stale_features = _write_features(session, project_id, snapshot)
    stale_features += _write_derived(session, project_id, snapshot, keep_versions)
    stale_features += _write_batch(session, project_id, snapshot, keep_versions)
    write_analytics(session, project_id, snapshot.analytics)
    write_retention(session, project_id, snapshot.retention)
    write_monitoring(session, project_id, snapshot.monitoring)
    write_quality(session, project_id, snapshot.quality)
    for stale in (stale_features, stale_events, stale_pipelines):
        for row in stale:
            session.delete(row)
        session.flush()
    return snapshot


def write_analytics(session: Session, project_id: str, settings: AnalyticsSettings) -> None:
    """Store the draft analytics settings (one row per project, written only when changed)."""
    values = settings.model_dump(mode="json")
    row = session.get(AnalyticsSettingsRow, project_id)
    if row is None:
        session.add(AnalyticsSettingsRow(project_id=project_id, settings=values))
    elif row.settings != values:
        row.settings = values
    session.flush()


def write_retention(session: Session, project_id: str, policy: RetentionPolicy) -> None:
    """Store the draft retention policy (one row per project, written only when changed)."""
    values = policy.model_dump(mode="json")
    row = session.get(RetentionPolicyRow, project_id)
    if row is None:
        session.add(RetentionPolicyRow(project_id=project_id, policy=values))
    elif row.policy != values:
        row.policy = values
    session.flush()


def write_monitoring(session: Session, project_id: str, settings: MonitoringSettings) -> None:
    """Store the draft monitoring settings (one row per project, written only when changed)."""
    values = settings.model_dump(mode="json")
    row = session.get(MonitoringSettingsRow, project_id)
    if row is None:
        session.add(MonitoringSettingsRow(project_id=project_id, settings=values))
    elif row.settings != values:
        row.settings = values


def write_quality(session: Session, project_id: str, config: QualityConfig) -> None:
    """Store the draft quality rules (one row per project, written only when changed)."""
    values = config.model_dump(mode="json", exclude_defaults=True)
    row = session.get(QualityDraftRow, project_id)
    if row is None:
        session.add(QualityDraftRow(project_id=project_id, config=values))
    elif row.config != values:
        row.config = values
    session.flush()


def _write_derived(
    session: Session, project_id: str, snapshot: ConfigSnapshot, keep_versions: bool
) -> list[Any]:
    """Upsert the derived features; a changed one gets a new version (unless restoring)."""
    from dataintel.config.derived.repository import next_version
    from dataintel.storage.metadata.feature_models import DerivedFeature

    rows = {
        r.name: r
        for r in session.scalars(
            select(DerivedFeature).where(DerivedFeature.project_id == project_id)
        )
    }
    for spec in snapshot.derived:
        attrs = spec.model_dump(exclude={"name", "version"})
        row = rows.pop(spec.name, None)
        if row is None:
            version = (
                spec.version if keep_versions else next_version(session, project_id, spec.name)
            )
            session.add(
                DerivedFeature(project_id=project_id, name=spec.name, version=version, **attrs)
            )
            continue
        if any(getattr(row, k) != v for k, v in attrs.items()) or (
            keep_versions and row.version != spec.version
        ):
            version = (
                spec.version if keep_versions else next_version(session, project_id, spec.name)
            )
            for key, value in attrs.items():
                setattr(row, key, value)
            row.version = version
    session.flush()
    return list(rows.values())


def _write_batch(
    session: Session, project_id: str, snapshot: ConfigSnapshot, keep_versions: bool
) -> list[Any]:
    from dataintel.config.batch.repository import write_draft

    return write_draft(session, project_id, snapshot, keep_versions)


def next_feature_version(session: Session, project_id: str, name: str) -> int:
    """The version a changed definition of feature ``name`` gets: above every version the
    name has had (draft or deployed), so tiles of an older definition are never reused."""
    return highest_feature_versions(session, project_id).get(name, 0) + 1
