"""A JWT's rate-limit bucket is its issuer + project scope + subject, not ``sub`` alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
from fastapi.testclient import TestClient

from dataintel.main import create_app
from dataintel.settings import Settings
from tests.conftest import Keys, assert_problem

SECRET = "test-secret-" + "x" * 32  # conftest's make_settings default


def _token(**claims: Any) -> dict[str, str]:
    now = int(time.time())
    body = {"iss": "dataintel", "aud": "dataintel", "iat": now, "exp": now + 300}
    body.update(claims)
    return {"Authorization": f"Bearer {jwt.encode(body, SECRET, algorithm='HS256')}"}


def test_same_sub_in_two_tenants_gets_two_buckets(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(rate_limit="2/minute"))
    keys = Keys(app)
    keys.project("shop-a")
    keys.project("shop-b")
    tenant_a = _token(sub="admin", roles=["admin"], projects=["shop-a"])
    tenant_b = _token(sub="admin", roles=["admin"], projects=["shop-b"])
    with TestClient(app, raise_server_exceptions=False) as client:
        for _ in range(2):
            assert client.get("/api/v1/projects/shop-a", headers=tenant_a).status_code == 200
        assert_problem(client.get("/api/v1/projects/shop-a", headers=tenant_a), 429)
        # Tenant B's "admin" is another user: tenant A's traffic must not throttle it.
        for _ in range(2):
            assert client.get("/api/v1/projects/shop-b", headers=tenant_b).status_code == 200
        assert_problem(client.get("/api/v1/projects/shop-b", headers=tenant_b), 429)
        # The same subject and scope is one bucket, whatever token carries it.
        again_a = _token(sub="admin", roles=["developer"], projects=["shop-a"])
        assert_problem(client.get("/api/v1/projects/shop-a", headers=again_a), 429)
