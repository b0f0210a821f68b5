"""Liveness; readiness (degraded is ready) and the dependency check, naming what fails."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.testclient import TestClient

from dataintel.main import create_app
from dataintel.settings import Settings
from tests.conftest import assert_problem

CLOSED_PG = "postgresql+psycopg://postgres@127.0.0.1:1/x"
CLOSED_REDIS = "redis://127.0.0.1:1"


def test_live_needs_no_credentials(client: TestClient) -> None:
    resp = client.get("/health/live")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_ready_lists_each_configured_backend(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(rate_limit="100/second"))
    with TestClient(app) as client:
        resp = client.get("/health/ready")
    assert resp.status_code == 200
    checks = {"metadata": "ok", "rate_limit": "ok", "eventlog": "ok", "analytics": "ok"}
    breakers = dict.fromkeys(("metadata", "eventlog", "online", "analytics"), "closed")
    expected = {"status": "ready", "checks": checks, "failures": {}, "breakers": breakers}
    assert resp.json() == expected
    with TestClient(app) as client:
        assert client.get("/health/dependencies").json()["checks"] == checks


def test_ready_without_rate_limiting_checks_the_stores_only(client: TestClient) -> None:
    checks = client.get("/health/ready").json()["checks"]
    assert checks == {"metadata": "ok", "eventlog": "ok", "analytics": "ok"}


def test_unreachable_metadata_store_is_degraded_but_ready_and_a_503_from_dependencies(
    make_settings: Callable[..., Settings],
) -> None:
    """A shared dependency away must not take every replica out of the load balancer: the
    process still serves what it can, so readiness says `degraded` with a 200; the dependency
    check is the strict one."""
    app = create_app(make_settings(metadata_url=CLOSED_PG, auto_migrate=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/health/live").status_code == 200
        started = time.monotonic()
        ready = client.get("/health/ready")
        strict = client.get("/health/dependencies")
    assert time.monotonic() - started < 5
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["metadata"] == "failing"
    assert ready.json()["checks"]["eventlog"] == "ok"
    assert set(ready.json()["failures"]) == {"metadata"}
    body = assert_problem(strict, 503)
    assert "metadata" in body["detail"]
    assert set(body["failures"]) == {"metadata"}


def test_unreachable_rate_limit_storage_is_503_naming_rate_limit(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(rate_limit="10/second", rate_limit_storage_url=CLOSED_REDIS))
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/health/dependencies")
        assert client.get("/health/ready").json()["status"] == "degraded"
    body = assert_problem(resp, 503)
    assert "rate_limit" in body["detail"]
    assert set(body["failures"]) == {"rate_limit"}


def test_every_failing_backend_is_named(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        metadata_url=CLOSED_PG,
        auto_migrate=False,
        rate_limit="10/second",
        rate_limit_storage_url=CLOSED_REDIS,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        started = time.monotonic()
        body = assert_problem(client.get("/health/dependencies"), 503)
    assert time.monotonic() - started < 3  # checked side by side, each cut off after 1 s
    assert set(body["failures"]) == {"metadata", "rate_limit"}
    assert "metadata" in body["detail"]
    assert "rate_limit" in body["detail"]


def test_unreachable_metadata_store_on_an_api_route_is_503_not_500(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(metadata_url=CLOSED_PG, auto_migrate=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/api/v1/projects", headers={"Authorization": "Bearer di_key1_x"})
    assert_problem(resp, 503)
