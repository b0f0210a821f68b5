"""The MetadataStore contract: one suite, run against SQLite and PostgreSQL.

Whatever the adapter, migrations go up and down, values round-trip unchanged (aware UTC
datetimes, JSON), constraints hold (unique, foreign keys with cascades), a concurrent
duplicate deployment loses with IntegrityError, and the repositories answer the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, delete, func, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from dataintel.auth import repository as keys_repo
from dataintel.config.projects import repository as projects_repo
from dataintel.storage.metadata import gdpr_models, migrate, quality_models, retention_models
from dataintel.storage.metadata.engine import make_engine, make_sessionmaker, ping
from dataintel.storage.metadata.models import (
    ApiKey,
    Base,
    Deployment,
    Feature,
    Pipeline,
    PipelineEvent,
    Project,
)

pytestmark = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

TABLES = {
    "projects",
    "api_keys",
    "pipelines",
    "pipeline_events",
    "features",
    "deployments",
    "dead_letters",
    "ingest_stats",
    "feature_backfills",
    "derived_features",
    "analytics_settings",
    "reports",
    "audit_entries",
    "audit_heads",
    "gdpr_requests",
    "gdpr_tasks",
    "gdpr_suppressions",
    "gdpr_outbox",
    "service_secrets",
    "subject_keys",
    "job_runs",
    "reconciliation_reports",
    "retention_policies",
    "retention_status",
    "monitoring_settings",
    "quality_alerts",
    "quality_alert_outbox",
    "quality_metric_points",
    "quality_evaluations",
    "feature_statistics",
    "batch_features",
    "batch_feature_runs",
    "quality_drafts",
    "quality_results",
}
WHEN = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))


@pytest.fixture
def engine(metadata_url: str) -> Iterator[Engine]:
    engine = make_engine(metadata_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with make_sessionmaker(engine)() as session:
        yield session


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _head(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(migrate.alembic_config(engine)).get_current_head()


def _project(session: Session, pid: str, **kw: Any) -> Project:
    return projects_repo.add(session, Project(id=pid, name=pid.upper(), **kw))


def _pipeline(session: Session, pid: str, pipeline_id: str = "web") -> None:
    session.add(Pipeline(project_id=pid, id=pipeline_id, name="Web", webhook_secret="s" * 40))
    session.flush()


def _key(session: Session, key_id: str, project_id: str | None, **kw: Any) -> ApiKey:
    values: dict[str, Any] = {
        "name": "k",
        "roles": ["admin"],
        "secret_hash": "0" * 64,
        "created_by": "tests",
    }
    values.update(kw)
    return keys_repo.add_key(session, ApiKey(id=key_id, project_id=project_id, **values))


def _deployment(pid: str, version: int) -> Deployment:
    return Deployment(
        project_id=pid, version=version, kind="deploy", snapshot={}, changes=[], created_by="t"
    )


# --- migrations ---------------------------------------------------------------------------


def test_migrations_upgrade_downgrade_and_upgrade_again(engine: Engine) -> None:
    head = _head(engine)
    assert _revision(engine) == head
    assert _tables(engine) == TABLES
    migrate.upgrade(engine)  # idempotent at head
    migrate.downgrade(engine, "base")
    assert _revision(engine) is None
    assert _tables(engine) == set()
    migrate.upgrade(engine)
    assert _revision(engine) == head
    assert _tables(engine) == TABLES
    ping(engine)


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    assert gdpr_models.GdprRequest.__table__ is not None  # registered on Base.metadata
    assert retention_models.RetentionStatus.__table__ is not None
    assert quality_models.QualityResult.__table__ is not None
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


# --- round-trips --------------------------------------------------------------------------


def test_datetimes_come_back_aware_utc_and_equal(engine: Engine, session: Session) -> None:
    _project(session, "p1", created_at=WHEN, updated_at=WHEN)
    _key(session, "k1", "p1", created_at=WHEN, expires_at=WHEN + timedelta(days=1))
    session.commit()
    with make_sessionmaker(engine)() as fresh:
        project = fresh.get(Project, "p1")
        key = fresh.get(ApiKey, "k1")
        assert project is not None
        assert key is not None
        for value in (project.created_at, project.updated_at, key.created_at):
            assert value.tzinfo is not None
            assert value.utcoffset() == timedelta(0)
            assert value == WHEN
            assert value.microsecond == WHEN.microsecond
        assert key.expires_at == WHEN + timedelta(days=1)
        assert key.revoked_at is None
        # Comparisons in SQL use the same instant whatever the input offset.
        earlier = WHEN.astimezone(timezone(timedelta(hours=-8))) - timedelta(microseconds=1)
        found = fresh.scalars(select(Project.id).where(Project.created_at > earlier)).all()
        assert found == ["p1"]


def test_defaults_are_aware_utc(engine: Engine, session: Session) -> None:
    before = datetime.now(UTC)
    _project(session, "p1")
    session.commit()
    with make_sessionmaker(engine)() as fresh:
        created = fresh.get(Project, "p1").created_at  # type: ignore[union-attr]
    assert created.tzinfo is not None
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC)


def test_naive_datetimes_are_refused(session: Session) -> None:
    session.add(Project(id="p1", name="x", created_at=datetime(2024, 1, 1)))
    with pytest.raises(StatementError, match="naive datetime"):
        session.flush()


def test_json_columns_round_trip(engine: Engine, session: Session) -> None:
    fields = [
        {"name": "sku", "type": "string", "required": True, "pii": False},
        {"name": "price", "type": "number", "description": "prix € — 價格"},
    ]
    snapshot = {
        "pipelines": [{"id": "web", "events": [{"name": "cart_add", "fields": fields}]}],
        "features": [],
        "nested": {"a": [1, 2.5, None, True, False, "x"], "b": {"c": {}}, "": 0},
        "big": 2**53,
    }
    changes = [{"kind": "pipeline", "key": "web", "action": "create", "before": None}]
    _project(session, "p1")
    _pipeline(session, "p1")
    session.add(PipelineEvent(project_id="p1", pipeline_id="web", name="cart_add", fields=fields))
    session.add(
        Feature(
            project_id="p1",
            name="f1",
            pipeline_id="web",
            entity_key="user_id",
            source_event="cart_add",
            aggregation="SUM",
            field="price",
            windows=["1h", "7d"],
        )
    )
    session.add(
        Deployment(
            project_id="p1",
            version=1,
            kind="deploy",
            snapshot=snapshot,
            changes=changes,
            created_by="t",
        )
    )
    _key(session, "k1", "p1", roles=["analyst", "developer"])
    session.commit()
    with make_sessionmaker(engine)() as fresh:
        event = fresh.get(PipelineEvent, ("p1", "web", "cart_add"))
        feature = fresh.get(Feature, ("p1", "f1"))
        deployment = fresh.scalars(select(Deployment)).one()
        key = fresh.get(ApiKey, "k1")
        assert event is not None
        assert feature is not None
        assert key is not None
        assert event.fields == fields
        assert feature.windows == ["1h", "7d"]
        assert deployment.snapshot == snapshot
        assert deployment.changes == changes
        assert key.roles == ["analyst", "developer"]
        assert event.enabled is True
        assert feature.version == 1


# --- constraints --------------------------------------------------------------------------


def test_primary_keys_are_unique(session: Session) -> None:
    _project(session, "p1")
    session.commit()
    with pytest.raises(IntegrityError):
        _project(session, "p1")
    session.rollback()
    _pipeline(session, "p1")
    session.commit()
    with pytest.raises(IntegrityError):
        _pipeline(session, "p1")
    session.rollback()
    _pipeline(session, "p1", "other")  # same id in another scope is fine
    _project(session, "p2")
    _pipeline(session, "p2")
    session.commit()


@pytest.mark.parametrize(
    "orphan",
    [
        lambda: Pipeline(project_id="nope", id="web", name="x", webhook_secret="s"),
        lambda: PipelineEvent(project_id="p1", pipeline_id="nope", name="e"),
        lambda: Feature(
            project_id="p1",
            name="f",
            pipeline_id="nope",
            entity_key="user_id",
            source_event="e",
            aggregation="COUNT",
            windows=["1h"],
        ),
        lambda: ApiKey(
            id="k", project_id="nope", name="k", roles=[], secret_hash="0", created_by="t"
        ),
        lambda: _deployment("nope", 1),
    ],
    ids=["pipeline", "event", "feature", "api_key", "deployment"],
)
def test_foreign_keys_are_enforced(session: Session, orphan: Any) -> None:
    _project(session, "p1")
    session.commit()
    session.add(orphan())
    with pytest.raises(IntegrityError):
        session.flush()


def _count(session: Session, model: Any, project_id: str) -> int:
    stmt = select(func.count()).select_from(model).where(model.project_id == project_id)
    return int(session.scalar(stmt) or 0)


def test_deleting_a_project_cascades_to_everything_it_owns(
    engine: Engine, session: Session
) -> None:
    for pid in ("p1", "p2"):
        _project(session, pid)
        _pipeline(session, pid)
        session.add(PipelineEvent(project_id=pid, pipeline_id="web", name="cart_add"))
        session.add(
            Feature(
                project_id=pid,
                name="f1",
                pipeline_id="web",
                entity_key="user_id",
                source_event="cart_add",
                aggregation="COUNT",
                windows=["1h"],
            )
        )
        session.add(_deployment(pid, 1))
        _key(session, f"key{pid}", pid)
    _key(session, "global", None)
    session.commit()
    session.execute(delete(Project).where(Project.id == "p1"))
    session.commit()
    owned = (Pipeline, PipelineEvent, Feature, Deployment, ApiKey)
    with make_sessionmaker(engine)() as fresh:
        assert [_count(fresh, m, "p1") for m in owned] == [0] * len(owned)
        assert [_count(fresh, m, "p2") for m in owned] == [1] * len(owned)
        assert fresh.get(ApiKey, "global") is not None


def test_deleting_a_pipeline_cascades_to_its_events_and_features(session: Session) -> None:
    _project(session, "p1")
    _pipeline(session, "p1")
    session.add(PipelineEvent(project_id="p1", pipeline_id="web", name="cart_add"))
    session.add(
        Feature(
            project_id="p1",
            name="f1",
            pipeline_id="web",
            entity_key="user_id",
            source_event="cart_add",
            aggregation="COUNT",
            windows=["1h"],
        )
    )
    session.commit()
    session.execute(delete(Pipeline).where(Pipeline.project_id == "p1"))
    session.commit()
    assert _count(session, PipelineEvent, "p1") == _count(session, Feature, "p1") == 0


def test_concurrent_duplicate_deployment_version_loses_with_integrity_error(
    engine: Engine, session: Session
) -> None:
    _project(session, "p1")
    session.commit()
    sessions = make_sessionmaker(engine)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def deploy(message: str) -> None:
        with sessions() as own:
            barrier.wait(timeout=10)
            row = _deployment("p1", 7)
            row.message = message
            own.add(row)
            try:
                own.commit()
                result = "committed"
            except IntegrityError:
                own.rollback()
                result = "integrity-error"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=deploy, args=(m,)) for m in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
    assert sorted(outcomes) == ["committed", "integrity-error"]
    with sessions() as fresh:
        assert _count(fresh, Deployment, "p1") == 1
    session.add(_deployment("p1", 8))  # another version is fine
    session.commit()


# --- repositories -------------------------------------------------------------------------


def test_project_repository(session: Session) -> None:
    for pid in ("b-shop", "a_shop", "ab", "a-c", "a"):
        _project(session, pid)
    session.commit()
    assert projects_repo.get(session, "ab") is not None
    assert projects_repo.get(session, "missing") is None
    everything = [p.id for p in projects_repo.list_visible(session, None)]
    assert everything == sorted(everything) == ["a", "a-c", "a_shop", "ab", "b-shop"]
    some = projects_repo.list_visible(session, frozenset({"ab", "a", "zz"}))
    assert [p.id for p in some] == ["a", "ab"]
    assert projects_repo.list_visible(session, frozenset()) == []


def test_api_key_repository(session: Session) -> None:
    _project(session, "p1")
    _project(session, "p2")
    base = datetime(2024, 1, 1, tzinfo=UTC)
    _key(session, "k3", "p1", created_at=base + timedelta(seconds=3), name="ci")
    _key(session, "k1", "p1", created_at=base + timedelta(seconds=1), name="ci")
    _key(session, "k2", "p2", created_at=base + timedelta(seconds=2))
    _key(session, "k0", None, created_at=base, roles=["developer"])
    session.commit()

    def ids(projects: frozenset[str] | None, pid: str | None, revoked: bool) -> list[str]:
        return [k.id for k in keys_repo.list_keys(session, projects, pid, revoked)]

    assert ids(None, None, False) == ["k0", "k1", "k2", "k3"]
    assert ids(frozenset({"p1"}), None, False) == ["k1", "k3"]
    assert ids(frozenset({"p1"}), "p2", False) == []
    assert ids(None, "p2", False) == ["k2"]
    assert not keys_repo.has_global_admin(session)
    _key(session, "k9", None, created_at=base + timedelta(seconds=9), roles=["admin", "analyst"])
    assert keys_repo.has_global_admin(session)

    row = keys_repo.get_key(session, "k1")
    assert row is not None
    assert keys_repo.get_key(session, "nope") is None
    when = datetime(2024, 6, 1, tzinfo=UTC)
    keys_repo.revoke(row, when)
    keys_repo.revoke(row, when + timedelta(days=1))  # first revocation wins
    session.commit()
    assert keys_repo.get_key(session, "k1").revoked_at == when  # type: ignore[union-attr]
    assert ids(frozenset({"p1"}), None, False) == ["k3"]
    assert ids(frozenset({"p1"}), None, True) == ["k1", "k3"]
    assert [k.id for k in keys_repo.keys_named(session, "ci", "p1")] == ["k3"]
    assert keys_repo.keys_named(session, "ci", None) == []
    keys_repo.revoke(keys_repo.get_key(session, "k9"), when)  # type: ignore[arg-type]
    session.flush()  # the request sessions do not autoflush
    assert not keys_repo.has_global_admin(session)
