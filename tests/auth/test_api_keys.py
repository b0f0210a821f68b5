"""API keys through HTTP: shown once, stored hashed, scoped, revocable, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dataintel.auth.key_cache import KEY_CACHE
from dataintel.auth.permissions import Role
from dataintel.storage.metadata.models import ApiKey
from tests.conftest import Keys, assert_problem

KEYS = "/api/v1/api-keys"


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    payload = {"name": "ci", "roles": ["developer"], **body}
    resp = client.post(KEYS, json=payload, headers=headers)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _stored(app: Any, key_id: str) -> ApiKey:
    with app.state.dataintel.sessions() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.id == key_id)).one()
        session.expunge(row)
        return row


def test_created_key_is_shown_once_and_stored_hashed(
    app: Any, client: TestClient, keys: Keys, admin: dict[str, str]
) -> None:
    keys.project("p1")
    created = _create(client, admin, project_id="p1", roles=["developer", "analyst"])
    secret = created["key"]
    assert secret.startswith("di_")
    assert created["id"] in secret
    assert created["project_id"] == "p1"
    assert created["roles"] == ["analyst", "developer"]
    assert created["prefix"].startswith("di_" + created["id"])
    assert created["created_by"].startswith("key:")
    listed = client.get(KEYS, headers=admin).json()
    assert created["id"] in {k["id"] for k in listed}
    assert all("key" not in k and secret not in str(k) for k in listed)
    row = _stored(app, created["id"])
    assert row.secret_hash != secret
    assert secret.split("_")[-1] not in row.secret_hash
    assert len(row.secret_hash) == 64
    # The key works, with exactly its roles.
    assert client.get("/api/v1/projects/p1", headers=_bearer(secret)).status_code == 200
    assert_problem(client.get(KEYS, headers=_bearer(secret)), 403)


def test_project_admin_sees_only_its_project_keys(
    client: TestClient, keys: Keys, admin: dict[str, str]
) -> None:
    keys.project("p1")
    keys.project("p2")
    p1_admin = keys.headers([Role.ADMIN], "p1")
    k1 = _create(client, admin, project_id="p1")["id"]
    k2 = _create(client, admin, project_id="p2")["id"]
    mine = {k["id"] for k in client.get(KEYS, headers=p1_admin).json()}
    assert k1 in mine
    assert k2 not in mine
    assert all(k["project_id"] == "p1" for k in client.get(KEYS, headers=p1_admin).json())
    assert client.get(KEYS, params={"project_id": "p2"}, headers=p1_admin).json() == []
    everyone = {k["id"] for k in client.get(KEYS, headers=admin).json()}
    assert {k1, k2} <= everyone
    only_p2 = client.get(KEYS, params={"project_id": "p2"}, headers=admin).json()
    assert [k["id"] for k in only_p2] == [k2]


def test_project_admin_manages_keys_of_its_own_project(client: TestClient, keys: Keys) -> None:
    keys.project("p1")
    p1_admin = keys.headers([Role.ADMIN], "p1")
    created = _create(client, p1_admin, project_id="p1", roles=["ingest"])
    assert created["project_id"] == "p1"
    resp = client.delete(f"{KEYS}/{created['id']}", headers=p1_admin)
    assert resp.status_code == 200
    assert resp.json()["revoked_at"]


def test_revoked_key_is_rejected(client: TestClient, keys: Keys, admin: dict[str, str]) -> None:
    keys.project("p1")
    created = _create(client, admin, project_id="p1")
    headers = _bearer(created["key"])
    assert client.get("/api/v1/projects/p1", headers=headers).status_code == 200
    revoked = client.delete(f"{KEYS}/{created['id']}", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert "key" not in revoked.json()
    body = assert_problem(client.get("/api/v1/projects/p1", headers=headers), 401)
    assert "revoked" in body["detail"]
    # Revoking twice is idempotent; revoked keys are hidden unless asked for.
    assert client.delete(f"{KEYS}/{created['id']}", headers=admin).status_code == 200
    assert created["id"] not in {k["id"] for k in client.get(KEYS, headers=admin).json()}
    with_revoked = client.get(KEYS, params={"include_revoked": True}, headers=admin).json()
    assert created["id"] in {k["id"] for k in with_revoked}


def test_expired_key_is_rejected(app: Any, client: TestClient, admin: dict[str, str]) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    created = _create(client, admin, roles=["admin"], expires_at=soon.isoformat())
    headers = _bearer(created["key"])
    assert client.get("/api/v1/projects", headers=headers).status_code == 200
    with app.state.dataintel.sessions.begin() as session:
        session.get(ApiKey, created["id"]).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    # A change made behind the API's back is seen once the verified-key cache lets go of
    # the key (TTL_SECONDS); evict it instead of waiting.
    KEY_CACHE.evict_key(created["id"])
    body = assert_problem(client.get("/api/v1/projects", headers=headers), 401)
    assert "expired" in body["detail"]


@pytest.mark.parametrize("expires_at", ["2000-01-01T00:00:00+00:00", "2999-01-01T00:00:00"])
def test_past_or_naive_expiry_is_422(
    client: TestClient, admin: dict[str, str], expires_at: str
) -> None:
    resp = client.post(
        KEYS, json={"name": "x", "roles": ["admin"], "expires_at": expires_at}, headers=admin
    )
    assert_problem(resp, 422, field="expires_at")


def test_project_admin_cannot_create_a_global_key(client: TestClient, keys: Keys) -> None:
    keys.project("p1")
    resp = client.post(
        KEYS, json={"name": "x", "roles": ["admin"]}, headers=keys.headers([Role.ADMIN], "p1")
    )
    assert_problem(resp, 403)


def test_project_admin_cannot_create_a_key_for_another_project(
    client: TestClient, keys: Keys
) -> None:
    keys.project("p1")
    keys.project("p2")
    headers = keys.headers([Role.ADMIN], "p1")
    for target in ("p2", "nope"):
        resp = client.post(
            KEYS, json={"name": "x", "roles": ["admin"], "project_id": target}, headers=headers
        )
        assert_problem(resp, 404)


def test_project_admin_cannot_revoke_keys_outside_its_project(
    client: TestClient, keys: Keys, admin: dict[str, str]
) -> None:
    keys.project("p1")
    keys.project("p2")
    other = _create(client, admin, project_id="p2")["id"]
    global_key = _create(client, admin, roles=["admin"])["id"]
    headers = keys.headers([Role.ADMIN], "p1")
    for key_id in (other, global_key, "keydoesnotexist"):
        assert_problem(client.delete(f"{KEYS}/{key_id}", headers=headers), 404)
    assert {other, global_key} <= {k["id"] for k in client.get(KEYS, headers=admin).json()}


@pytest.mark.parametrize(
    "role", [Role.DEVELOPER, Role.INGEST, Role.SERVICE, Role.ANALYST, Role.COMPLIANCE]
)
def test_non_admin_roles_cannot_manage_keys(
    client: TestClient, keys: Keys, admin: dict[str, str], role: Role
) -> None:
    keys.project("p1")
    headers = keys.headers([role], "p1")
    target = _create(client, admin, project_id="p1")["id"]
    body = {"name": "x", "roles": ["ingest"], "project_id": "p1"}
    assert_problem(client.post(KEYS, json=body, headers=headers), 403)
    assert_problem(client.get(KEYS, headers=headers), 403)
    assert_problem(client.delete(f"{KEYS}/{target}", headers=headers), 403)
    global_non_admin = keys.headers([role])
    assert_problem(client.get(KEYS, headers=global_non_admin), 403)


def test_no_credentials_is_401_with_www_authenticate(client: TestClient) -> None:
    for method, path in (("GET", KEYS), ("POST", KEYS), ("GET", "/api/v1/projects")):
        resp = client.request(method, path)
        assert_problem(resp, 401)
        assert resp.headers["www-authenticate"] == 'Bearer realm="dataintel"'


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Token di_abc_def",
        "di_abc_def",
        "Bearer di_",
        "Bearer di_nounderscore",
        "Bearer di_keyffffffffffffffff_wrongsecret",
        "Bearer di_" + "k" * 60 + "_secret",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
    ],
)
def test_malformed_or_unknown_credentials_are_401(client: TestClient, authorization: str) -> None:
    resp = client.get("/api/v1/projects", headers={"Authorization": authorization})
    assert_problem(resp, 401)
    assert "www-authenticate" in resp.headers


def test_wrong_secret_for_an_existing_key_id_is_401(client: TestClient, keys: Keys) -> None:
    key = keys.mint([Role.ADMIN])
    forged = key.rsplit("_", 1)[0] + "_" + "A" * 43
    assert_problem(client.get("/api/v1/projects", headers=_bearer(forged)), 401)


def test_x_api_key_header_works(client: TestClient, keys: Keys) -> None:
    keys.project("p1")
    key = keys.mint([Role.ANALYST], "p1")
    resp = client.get("/api/v1/projects", headers={"X-API-Key": key})
    assert resp.status_code == 200
    assert [p["id"] for p in resp.json()] == ["p1"]
    assert_problem(client.get("/api/v1/projects", headers={"X-API-Key": "di_bad_key"}), 401)


def test_create_key_payload_is_validated(client: TestClient, admin: dict[str, str]) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "x", "roles": []}, "roles"),
        ({"name": "x", "roles": ["root"]}, "roles"),
        ({"name": "", "roles": ["admin"]}, "name"),
        ({"name": "x", "roles": ["admin"], "project_id": "Bad Id"}, "project_id"),
        ({"name": "x", "roles": ["admin"], "secret": "mine"}, "secret"),
    ]
    for payload, field in cases:
        assert_problem(client.post(KEYS, json=payload, headers=admin), 422, field=field)


def test_me_says_what_the_credential_may_do(client: TestClient, keys: Keys) -> None:
    """GET /api/v1/me: the dashboard shows the pages these permissions allow."""
    keys.project("shop")
    officer = client.get("/api/v1/me", headers=keys.headers([Role.COMPLIANCE], "shop")).json()
    assert officer["roles"] == ["compliance"]
    assert officer["permissions"] == ["project:read", "gdpr:manage", "audit:read"]
    assert officer["projects"] == ["shop"]
    assert officer["subject"].startswith("key:")
    admin = client.get("/api/v1/me", headers=keys.headers([Role.ADMIN])).json()
    assert admin["projects"] is None
    assert "projects:manage" in admin["permissions"]
    project_admin = client.get("/api/v1/me", headers=keys.headers([Role.ADMIN], "shop")).json()
    assert "projects:manage" not in project_admin["permissions"]  # global credentials only
    assert_problem(client.get("/api/v1/me"), 401)
