"""JWT bearer tokens: pinned algorithm, required claims, roles and project scope."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from dataintel.main import create_app
from dataintel.settings import Settings
from tests.conftest import Keys, assert_problem

SECRET = "test-secret-" + "x" * 32  # conftest's make_settings default


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "alice",
        "iss": "dataintel",
        "aud": "dataintel",
        "iat": now,
        "exp": now + 300,
        "roles": ["developer"],
        "projects": ["p1"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _hs256(key: str = SECRET, **overrides: Any) -> str:
    return jwt.encode(_claims(**overrides), key, algorithm="HS256")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _handmade(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand (PyJWT refuses to sign some of the forgeries below)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = (
        b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{_b64(signature)}"


@pytest.fixture
def projects(keys: Keys) -> None:
    keys.project("p1")
    keys.project("p2")


@pytest.mark.usefixtures("projects")
def test_valid_hs256_token_grants_its_roles_and_projects(client: TestClient) -> None:
    headers = _bearer(_hs256())
    assert client.get("/api/v1/projects/p1", headers=headers).status_code == 200
    listed = client.get("/api/v1/projects", headers=headers).json()
    assert [p["id"] for p in listed] == ["p1"]
    # developer cannot manage keys nor create projects
    assert_problem(client.get("/api/v1/api-keys", headers=headers), 403)
    payload = {"id": "p3", "name": "x"}
    assert_problem(client.post("/api/v1/projects", json=payload, headers=headers), 403)


@pytest.mark.usefixtures("projects")
def test_token_scoped_to_p1_gets_404_for_p2(client: TestClient) -> None:
    headers = _bearer(_hs256(roles=["admin"], projects=["p1"]))
    body = assert_problem(client.get("/api/v1/projects/p2", headers=headers), 404)
    assert "p2" in body["detail"]
    assert_problem(client.get("/api/v1/projects/p404", headers=headers), 404)


def test_wildcard_admin_token_can_create_projects(client: TestClient) -> None:
    for projects in ("*", ["*"]):
        headers = _bearer(_hs256(roles=["admin"], projects=projects))
        pid = "all" if projects == "*" else "list"
        resp = client.post("/api/v1/projects", json={"id": pid, "name": "x"}, headers=headers)
        assert resp.status_code == 201, resp.text


def test_project_admin_token_cannot_create_projects(client: TestClient) -> None:
    headers = _bearer(_hs256(roles=["admin"], projects=["p1"]))
    resp = client.post("/api/v1/projects", json={"id": "p9", "name": "x"}, headers=headers)
    assert_problem(resp, 403)


def test_expired_token_is_401(client: TestClient) -> None:
    past = int(time.time()) - 3600
    body = assert_problem(client.get("/api/v1/projects", headers=_bearer(_hs256(exp=past))), 401)
    assert "expired" in body["detail"]


def test_expiry_within_leeway_is_accepted(client: TestClient) -> None:
    just_now = int(time.time()) - 5  # default leeway: 30 s
    assert client.get("/api/v1/projects", headers=_bearer(_hs256(exp=just_now))).status_code == 200


def test_forged_signature_is_401(client: TestClient) -> None:
    forged = _hs256(key="another-secret-" + "y" * 32, roles=["admin"], projects="*")
    assert_problem(client.get("/api/v1/projects", headers=_bearer(forged)), 401)
    good = _hs256()
    header, _payload, signature = good.split(".")
    tampered_claims = _claims(roles=["admin"], projects="*")
    tampered = f"{header}.{_b64(json.dumps(tampered_claims).encode())}.{signature}"
    assert_problem(client.get("/api/v1/projects", headers=_bearer(tampered)), 401)


def test_alg_none_token_is_401(client: TestClient) -> None:
    claims = _claims(roles=["admin"], projects="*")
    for alg in ("none", "None", "NONE"):
        token = _handmade({"alg": alg, "typ": "JWT"}, claims, None)
        assert_problem(client.get("/api/v1/projects", headers=_bearer(token)), 401)


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "someone-else"},
        {"aud": "another-service"},
        {"iss": None},
        {"aud": None},
        {"exp": None},
        {"sub": None},
        {"nbf": int(time.time()) + 3600},
    ],
    ids=["wrong-iss", "wrong-aud", "no-iss", "no-aud", "no-exp", "no-sub", "not-yet-valid"],
)
def test_bad_registered_claims_are_401(client: TestClient, overrides: dict[str, Any]) -> None:
    token = _hs256(**overrides)
    assert_problem(client.get("/api/v1/projects", headers=_bearer(token)), 401)


@pytest.mark.parametrize(
    "overrides",
    [
        {"roles": ["admin", "superuser"]},
        {"roles": []},
        {"roles": "admin"},
        {"roles": None},
        {"projects": None},
        {"projects": "p1"},
        {"projects": [1, 2]},
    ],
    ids=[
        "unknown-role",
        "no-roles",
        "roles-string",
        "roles-missing",
        "projects-missing",
        "projects-string",
        "projects-ints",
    ],
)
def test_bad_custom_claims_are_401(client: TestClient, overrides: dict[str, Any]) -> None:
    token = _hs256(**overrides)
    assert_problem(client.get("/api/v1/projects", headers=_bearer(token)), 401)


def test_jwt_is_rejected_when_not_configured(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(jwt_secret=None))
    with TestClient(app, raise_server_exceptions=False) as client:
        body = assert_problem(client.get("/api/v1/projects", headers=_bearer(_hs256())), 401)
    assert "not configured" in body["detail"]


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[bytes, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem.decode()


@pytest.fixture
def rs256_client(
    make_settings: Callable[..., Settings], rsa_pair: tuple[bytes, str]
) -> Iterator[TestClient]:
    settings = make_settings(jwt_algorithm="RS256", jwt_secret=None, jwt_public_key=rsa_pair[1])
    app = create_app(settings)
    Keys(app).project("p1")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_rs256_token_works(rs256_client: TestClient, rsa_pair: tuple[bytes, str]) -> None:
    token = jwt.encode(_claims(), rsa_pair[0], algorithm="RS256")
    resp = rs256_client.get("/api/v1/projects/p1", headers=_bearer(token))
    assert resp.status_code == 200, resp.text


def test_rs256_public_key_from_a_file(
    make_settings: Callable[..., Settings], rsa_pair: tuple[bytes, str], tmp_path: Any
) -> None:
    pem = tmp_path / "jwt.pub.pem"
    pem.write_text(rsa_pair[1])
    app = create_app(make_settings(jwt_algorithm="RS256", jwt_secret=None, jwt_public_key=str(pem)))
    token = jwt.encode(_claims(projects="*"), rsa_pair[0], algorithm="RS256")
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/api/v1/projects", headers=_bearer(token)).status_code == 200


def test_rs256_server_rejects_algorithm_confusion(
    rs256_client: TestClient, rsa_pair: tuple[bytes, str]
) -> None:
    public_pem = rsa_pair[1]
    claims = _claims(roles=["admin"], projects="*")
    confused = _handmade({"alg": "HS256", "typ": "JWT"}, claims, public_pem.encode())
    assert_problem(rs256_client.get("/api/v1/projects", headers=_bearer(confused)), 401)
    # A token signed with another RSA key is rejected too.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    foreign = jwt.encode(claims, other, algorithm="RS256")
    assert_problem(rs256_client.get("/api/v1/projects", headers=_bearer(foreign)), 401)
    # And so is an HS256 token under the configured shared secret of a sibling deployment.
    assert_problem(rs256_client.get("/api/v1/projects", headers=_bearer(_hs256())), 401)


def test_hs256_server_rejects_rs256_tokens(client: TestClient, rsa_pair: tuple[bytes, str]) -> None:
    token = jwt.encode(_claims(projects="*"), rsa_pair[0], algorithm="RS256")
    assert_problem(client.get("/api/v1/projects", headers=_bearer(token)), 401)


def test_rs256_settings_need_a_public_key() -> None:
    with pytest.raises(ValueError, match="jwt_public_key"):
        Settings(jwt_algorithm="RS256", jwt_secret="s" * 40)


def test_short_hs256_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Settings(jwt_secret="too-short")
