"""Sensitive routes (API key management, GDPR, exports): a stricter limit per credential and
per client IP on top of the general one; X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from dataintel.api.sensitive import is_sensitive
from dataintel.auth.permissions import Role
from dataintel.main import create_app
from dataintel.settings import Settings
from tests.api.test_ratelimit import _redis_host_port
from tests.conftest import REDIS_URL, Keys, assert_problem, require_service

GDPR = "/v1/gdpr/requests"
SENSITIVE_PREFIXES = ("/api/v1/api-keys", "/v1/gdpr/", "/v1/export/")


def _from(app: Any, host: str) -> TestClient:
    """A client whose requests come from ``host`` (the app's lifespan runs elsewhere)."""
    return TestClient(app, raise_server_exceptions=False, client=(host, 50000))


def _officer(keys: Keys) -> dict[str, str]:
    return keys.headers([Role.COMPLIANCE], "shop")


def _refused(resp: Any, limit: str) -> dict[str, Any]:
    body = assert_problem(resp, 429)
    assert body["limit"] == limit
    assert body["type"].endswith("/rate-limited")
    assert f"this {'client IP' if limit == 'ip' else 'credential'} on sensitive" in body["detail"]
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert body["retry_after"] == int(resp.headers["retry-after"])
    return body


def test_every_route_under_the_sensitive_prefixes_is_marked_and_no_other(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())
    marked, expected = set(), set()
    for ctx in iter_route_contexts(app.routes):
        if not isinstance(ctx.route, APIRoute):
            continue
        for method in ctx.methods or ():
            if is_sensitive(ctx.route):
                marked.add((method, ctx.path))
            if ctx.path.startswith(SENSITIVE_PREFIXES):
                expected.add((method, ctx.path))
    assert marked == expected
    assert {
        ("POST", "/api/v1/api-keys"),
        ("GET", "/api/v1/api-keys"),
        ("DELETE", "/api/v1/api-keys/{key_id}"),
        ("POST", "/v1/gdpr/forget/{user_id}"),
        ("GET", "/v1/gdpr/export/{user_id}"),
        ("GET", "/v1/export/events"),
        ("POST", "/v1/export/custom"),
        ("GET", "/v1/export/features"),
    } <= marked


def test_credential_limit_on_a_gdpr_route_leaves_others_and_other_routes_alone(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(rate_limit="1000/minute", sensitive_rate_limit="3/minute"))
    keys = Keys(app)
    keys.project("shop")
    first, second = _officer(keys), _officer(keys)
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(3):
            assert client.get(GDPR, headers=first).status_code == 200
        _refused(client.get(GDPR, headers=first), "credential")
        assert client.get(GDPR, headers=second).status_code == 200
        # Key management shares the sensitive bucket; non-sensitive routes do not.
        _refused(client.get("/api/v1/api-keys", headers=first), "credential")
        for _ in range(5):
            assert client.get("/api/v1/me", headers=first).status_code == 200


def test_general_limit_is_counted_once_on_sensitive_routes_and_unchanged(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(rate_limit="3/minute", sensitive_rate_limit="100/minute"))
    keys = Keys(app)
    keys.project("shop")
    officer = _officer(keys)
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(3):
            assert client.get(GDPR, headers=officer).status_code == 200
        body = assert_problem(client.get(GDPR, headers=officer), 429)
    assert "limit" not in body
    assert body["detail"] == "rate limit 3 per 1 minute exceeded for this credential"


def test_ip_limit_spans_credentials_and_counts_before_authentication(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(sensitive_rate_limit_per_ip="3/minute"))
    keys = Keys(app)
    keys.project("shop")
    first, second = _officer(keys), _officer(keys)
    with TestClient(app, raise_server_exceptions=False):
        here, there = _from(app, "203.0.113.7"), _from(app, "203.0.113.8")
        assert here.get(GDPR, headers=first).status_code == 200
        assert here.get(GDPR, headers=first).status_code == 200
        assert here.get(GDPR, headers=second).status_code == 200
        _refused(here.get(GDPR, headers=second), "ip")
        _refused(here.get("/api/v1/api-keys"), "ip")  # no credential: still this IP's bucket
        assert there.get(GDPR, headers=second).status_code == 200
        assert_problem(there.get(GDPR), 401)
        assert here.get("/api/v1/me", headers=first).status_code == 200


def test_forwarded_for_is_ignored_from_an_untrusted_peer_and_honoured_from_a_trusted_one(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(sensitive_rate_limit_per_ip="2/minute", trusted_proxies="10.0.0.0/8")
    app = create_app(settings)
    keys = Keys(app)
    keys.project("shop")
    officer = _officer(keys)

    def get(client: TestClient, forwarded: str) -> int:
        return client.get(GDPR, headers={**officer, "X-Forwarded-For": forwarded}).status_code

    with TestClient(app, raise_server_exceptions=False):
        direct, proxy = _from(app, "198.51.100.1"), _from(app, "10.0.0.5")
        # A client talking to us directly cannot pick its bucket with the header.
        assert [get(direct, f"192.0.2.{i}") for i in (1, 2, 3)] == [200, 200, 429]
        # Through the trusted proxy: the client is the right-most untrusted hop.
        assert get(proxy, "192.0.2.1") == 200
        assert get(proxy, "192.0.2.1, 10.0.0.9") == 200  # a second trusted hop
        _refused(proxy.get(GDPR, headers={**officer, "X-Forwarded-For": "192.0.2.1"}), "ip")
        assert get(proxy, "192.0.2.99, 192.0.2.1") == 429  # a forged left-most entry is no escape
        assert get(proxy, "not-an-ip, 192.0.2.1") == 429
        assert get(proxy, "192.0.2.2") == 200  # another client behind the proxy
        assert get(direct, "10.0.0.5") == 429  # claiming to be the proxy changes nothing


def test_sensitive_limits_are_shared_between_replicas_through_redis(
    make_settings: Callable[..., Settings],
) -> None:
    require_service("Redis", *_redis_host_port())
    settings = make_settings(
        rate_limit="1000/minute",
        rate_limit_storage_url=REDIS_URL,
        sensitive_rate_limit="2/minute",
        sensitive_rate_limit_per_ip="3/minute",
    )
    replica_a, replica_b = create_app(settings), create_app(settings)
    keys = Keys(replica_a)  # same metadata store: valid on both
    keys.project("shop")
    first, second, third = _officer(keys), _officer(keys), _officer(keys)
    ip = f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"  # fresh per run
    with (
        TestClient(replica_a, raise_server_exceptions=False),
        TestClient(replica_b, raise_server_exceptions=False),
    ):
        a, b = _from(replica_a, ip), _from(replica_b, ip)
        assert a.get(GDPR, headers=first).status_code == 200
        assert b.get(GDPR, headers=first).status_code == 200
        _refused(a.get(GDPR, headers=first), "credential")  # counted before it was refused
        _refused(b.get(GDPR, headers=second), "ip")
        other = _from(replica_b, "198.19.0.1")
        assert other.get(GDPR, headers=third).status_code == 200


def test_trusted_proxies_must_be_addresses_or_networks(
    make_settings: Callable[..., Settings],
) -> None:
    assert make_settings(trusted_proxies="10.0.0.0/8, ::1").trusted_proxies == ["10.0.0.0/8", "::1"]
    with pytest.raises(ValueError, match="trusted_proxies"):
        make_settings(trusted_proxies="nginx")
