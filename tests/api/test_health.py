"""Liveness, readiness naming the failing backend."""

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
    assert resp.json() == {"status": "ready", "checks": checks, "breakers": breakers}


def test_ready_without_rate_limiting_checks_the_stores_only(client: TestClient) -> None:
    checks = client.get("/health/ready").json()["checks"]
    assert checks == {"metadata": "ok", "eventlog": "ok", "analytics": "ok"}


def test_unreachable_metadata_store_is_503_naming_metadata(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(metadata_url=CLOSED_PG, auto_migrate=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/health/live").status_code == 200
        started = time.monotonic()
        resp = client.get("/health/ready")
    assert time.monotonic() - started < 5
    body = assert_problem(resp, 503)
    assert "metadata" in body["detail"]
    assert set(body["failures"]) == {"metadata"}


def test_unreachable_rate_limit_storage_is_503_naming_rate_limit(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(rate_limit="10/second", rate_limit_storage_url=CLOSED_REDIS))
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/health/ready")
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
        body = assert_problem(client.get("/health/ready"), 503)
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
