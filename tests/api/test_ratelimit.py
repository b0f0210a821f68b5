"""Per-credential rate limits: 429 problem+json with Retry-After; shared through Redis."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from dataintel.auth.permissions import Role
from dataintel.main import create_app
from dataintel.settings import Settings
from tests.conftest import REDIS_URL, Keys, assert_problem, require_service


def _redis_host_port() -> tuple[str, int]:
    hostport = REDIS_URL.split("://", 1)[1].split("/", 1)[0]
    host, _, port = hostport.partition(":")
    return host, int(port or 6379)


def test_fourth_request_of_a_key_is_429_and_other_keys_are_unaffected(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(rate_limit="3/minute"))
    keys = Keys(app)
    first, second = keys.headers([Role.ADMIN]), keys.headers([Role.ADMIN])
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(3):
            assert client.get("/api/v1/projects", headers=first).status_code == 200
        resp = client.get("/api/v1/projects", headers=first)
        body = assert_problem(resp, 429)
        assert body["type"].endswith("/rate-limited")
        assert "3 per 1 minute" in body["detail"]
        retry = int(resp.headers["retry-after"])
        assert 1 <= retry <= 60
        assert body["retry_after"] == retry
        assert client.get("/api/v1/projects", headers=second).status_code == 200
        # Operations endpoints carry no credential and are not limited.
        for _ in range(5):
            assert client.get("/health/live").status_code == 200


def test_several_limits_apply_together(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(rate_limit="100/second;2/minute"))
    headers = Keys(app).headers([Role.ADMIN])
    with TestClient(app, raise_server_exceptions=False) as client:
        statuses = [client.get("/api/v1/projects", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_limits_are_shared_between_replicas_through_redis(
    make_settings: Callable[..., Settings],
) -> None:
    require_service("Redis", *_redis_host_port())
    settings = make_settings(rate_limit="3/minute", rate_limit_storage_url=REDIS_URL)
    replica_a, replica_b = create_app(settings), create_app(settings)
    headers = Keys(replica_a).headers([Role.ADMIN])  # same metadata store: valid on both
    with (
        TestClient(replica_a, raise_server_exceptions=False) as a,
        TestClient(replica_b, raise_server_exceptions=False) as b,
    ):
        assert a.get("/api/v1/projects", headers=headers).status_code == 200
        assert b.get("/api/v1/projects", headers=headers).status_code == 200
        assert a.get("/api/v1/projects", headers=headers).status_code == 200
        resp = b.get("/api/v1/projects", headers=headers)
        assert_problem(resp, 429)
        assert int(resp.headers["retry-after"]) >= 1
        assert_problem(a.get("/api/v1/projects", headers=headers), 429)
        other = Keys(replica_b).headers([Role.ADMIN])
        assert a.get("/api/v1/projects", headers=other).status_code == 200


def test_unreachable_limit_storage_counts_in_process_instead(
    make_settings: Callable[..., Settings],
) -> None:
    """Redis away: the same limit is counted in this process (requests are answered, the
    limit still holds), and Redis is tried again after a few seconds."""
    settings = make_settings(rate_limit="3/minute", rate_limit_storage_url="redis://127.0.0.1:1")
    app = create_app(settings)
    headers = Keys(app).headers([Role.ADMIN])
    with TestClient(app, raise_server_exceptions=False) as client:
        answers = [client.get("/api/v1/projects", headers=headers) for _ in range(4)]
        limiter = app.state.dataintel.rate_limiter
        assert limiter is not None
        assert limiter.degraded
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert_problem(answers[3], 429)  # the limit holds, counted here
