"""Tenant isolation, proven route by route.

The matrix walks every route of the app whose path holds ``{project_id}`` (routes other
modules add later are covered automatically), aims it at project B, and calls each method
with a credential of project A that has every role: each call must be a 404 problem, and
B must be unchanged afterwards. B really holds a pipeline, an event schema, a feature, an
API key and a deployment, so the 404 proves isolation, not absence.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dataintel.api.deps import route_permission
from dataintel.auth.permissions import MATRIX, Permission, Role
from dataintel.config.deployments.snapshot_repository import draft_snapshot
from dataintel.storage.metadata.models import ApiKey, Deployment, Pipeline, Project
from tests.conftest import Keys, assert_problem, seed_config

A, B = "tenant-a", "tenant-b"
ALL_ROLES = list(Role)
PARAM = re.compile(r"{(\w+)(?::\w+)?}")
MUTATING = {"POST", "PUT", "PATCH"}
JWT_SECRET = "test-secret-" + "x" * 32  # conftest's make_settings default


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the template, e.g. /api/v1/projects/{project_id}/features/{name}
    dependant: Dependant

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def api_endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, route) of the app, through included routers."""
    found = []
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None or not route.path:
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                found.append(Endpoint(method, route.path, dependant))
    return found


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


def _int_params(dependant: Dependant) -> set[str]:
    return {
        p.name for d in _walk(dependant) for p in d.path_params if p.field_info.annotation is int
    }


@dataclass
class TenantB:
    key_id: str
    headers: dict[str, str]

    def values(self) -> dict[str, str]:
        return {
            "project_id": B,
            "pipeline_id": "web",
            "event_name": "cart_add",
            "event": "cart_add",
            "name": "f1",
            "feature": "f1",
            "feature_name": "f1",
            "version": "1",
            "key_id": self.key_id,
            "entity_id": "u1",
            "user_id": "u1",
            "cart_id": "c1",
            "session_id": "s1",
        }


def required_query(endpoint: Endpoint, values: dict[str, str]) -> dict[str, str]:
    """Values of the required query parameters that name a known resource (``?user_id=``)."""
    return {
        p.alias: values[p.alias]
        for d in _walk(endpoint.dependant)
        for p in d.query_params
        if p.field_info.is_required() and p.alias in values
    }


def concrete_path(endpoint: Endpoint, values: dict[str, str]) -> tuple[str, bool]:
    """(URL, whether every parameter had a known value) for ``endpoint``."""
    ints = _int_params(endpoint.dependant)
    known = True

    def fill(match: re.Match[str]) -> str:
        nonlocal known
        name = match.group(1)
        if name in values:
            return values[name]
        known = False
        return "1" if name in ints else "x1"

    return PARAM.sub(fill, endpoint.path), known


def _seed_b(app: FastAPI, client: TestClient, keys: Keys) -> TenantB:
    """Project B with real content: pipeline web / event cart_add / feature f1, an API key,
    and a deployment (through the API when the deployments route exists)."""
    keys.project(B, "Tenant B")
    seed_config(app, B)
    b_key = keys.mint(ALL_ROLES, B)
    headers = {"Authorization": f"Bearer {b_key}"}
    # The test's own client: a second TestClient would run (and end) a second app lifespan.
    rule = {"name": "f1", "type": "missing", "column": "user_id"}  # the quality rule f1
    quality = client.put(f"/api/v1/projects/{B}/quality", json={"rules": [rule]}, headers=headers)
    assert quality.status_code in (200, 404, 405), quality.text
    deployed = client.post(f"/api/v1/projects/{B}/deployments", json={}, headers=headers)
    if deployed.status_code in (404, 405):  # no deployments API: record version 1 directly
        with app.state.dataintel.sessions.begin() as session:
            snapshot = draft_snapshot(session, B).model_dump(mode="json")
            session.add(
                Deployment(
                    project_id=B,
                    version=1,
                    kind="deploy",
                    snapshot=snapshot,
                    changes=[],
                    created_by="tests",
                )
            )
            session.get(Project, B).active_version = 1
    else:
        assert deployed.status_code == 201, deployed.text
    return TenantB(key_id=b_key.split("_")[1], headers=headers)


def _state_of_b(app: FastAPI) -> dict[str, Any]:
    with app.state.dataintel.sessions() as session:
        project = session.get(Project, B)
        assert project is not None
        keys = session.scalars(select(ApiKey).where(ApiKey.project_id == B)).all()
        deployments = session.scalar(
            select(func.count()).select_from(Deployment).where(Deployment.project_id == B)
        )
        pipeline = session.get(Pipeline, (B, "web"))
        return {
            "project": (project.name, project.description, project.active_version),
            "draft": draft_snapshot(session, B).model_dump(mode="json"),
            "deployments": deployments,
            "keys": sorted((k.id, k.revoked_at is None) for k in keys),
            "pipeline": (pipeline.active, pipeline.webhook_secret) if pipeline else None,
        }


@pytest.fixture
def tenants(app: FastAPI, client: TestClient, keys: Keys) -> TenantB:
    keys.project(A, "Tenant A")
    return _seed_b(app, client, keys)


def _a_credentials(keys: Keys, kind: str) -> dict[str, str]:
    if kind == "api-key":
        return keys.headers(ALL_ROLES, A)
    now = int(time.time())
    claims = {
        "sub": "mallory",
        "iss": "dataintel",
        "aud": "dataintel",
        "iat": now,
        "exp": now + 300,
        "roles": [str(r) for r in ALL_ROLES],
        "projects": [A],
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET, algorithm='HS256')}"}


def _project_endpoints(app: FastAPI) -> list[Endpoint]:
    found = [e for e in api_endpoints(app) if "{project_id}" in e.path]
    assert found, "no project-scoped route found: the route walk is broken"
    return found


@pytest.mark.parametrize("credential", ["api-key", "jwt"])
def test_project_a_gets_404_on_every_route_of_project_b(
    app: FastAPI, client: TestClient, keys: Keys, tenants: TenantB, credential: str
) -> None:
    headers = _a_credentials(keys, credential)
    before = _state_of_b(app)
    failures = []
    for endpoint in _project_endpoints(app):
        url, _ = concrete_path(endpoint, tenants.values())
        body = {} if endpoint.method in MUTATING else None
        resp = client.request(endpoint.method, url, json=body, headers=headers)
        ok = resp.status_code == 404 and resp.headers["content-type"].startswith(
            "application/problem+json"
        )
        if not ok:
            failures.append(f"{endpoint} -> {resp.status_code} {resp.text[:200]}")
        else:
            assert_problem(resp, 404)
            assert B in resp.json()["detail"], f"{endpoint}: {resp.json()}"
    assert not failures, "\n".join(failures)
    assert _state_of_b(app) == before, "a cross-tenant call changed project B"


def test_project_b_resources_exist_for_its_own_credential(
    app: FastAPI, client: TestClient, tenants: TenantB
) -> None:
    """The control: the same GETs with B's own credential find the resources."""
    for endpoint in _project_endpoints(app):
        if endpoint.method != "GET":
            continue
        url, known = concrete_path(endpoint, tenants.values())
        params = required_query(endpoint, tenants.values())
        resp = client.get(url, params=params, headers=tenants.headers)
        assert resp.status_code not in (401, 403), f"{endpoint}: {resp.text}"
        if known:
            assert resp.status_code == 200, f"{endpoint} -> {resp.status_code} {resp.text}"
        elif resp.status_code == 404:
            assert f"project '{B}'" not in resp.json()["detail"], f"{endpoint}: {resp.text}"


def test_lists_show_only_the_callers_tenant(
    client: TestClient, keys: Keys, tenants: TenantB
) -> None:
    a_admin = keys.headers(ALL_ROLES, A)
    a_key_id = a_admin["Authorization"].split("_")[1]
    projects = client.get("/api/v1/projects", headers=a_admin).json()
    assert [p["id"] for p in projects] == [A]
    listed = client.get("/api/v1/api-keys", headers=a_admin).json()
    assert a_key_id in {k["id"] for k in listed}
    assert {k["project_id"] for k in listed} == {A}
    for params in ({"project_id": B}, {"project_id": B, "include_revoked": True}):
        assert client.get("/api/v1/api-keys", params=params, headers=a_admin).json() == []
    assert_problem(client.delete(f"/api/v1/api-keys/{tenants.key_id}", headers=a_admin), 404)
    payload = {"name": "sneaky", "roles": ["admin"], "project_id": B}
    assert_problem(client.post("/api/v1/api-keys", json=payload, headers=a_admin), 404)
    # B's key still works.
    assert client.get(f"/api/v1/projects/{B}", headers=tenants.headers).status_code == 200


def test_unknown_project_and_foreign_project_are_indistinguishable(
    client: TestClient, keys: Keys, tenants: TenantB
) -> None:
    a_admin = keys.headers(ALL_ROLES, A)
    foreign = client.get(f"/api/v1/projects/{B}", headers=a_admin)
    missing = client.get("/api/v1/projects/no-such-tenant", headers=a_admin)
    assert foreign.status_code == missing.status_code == 404
    strip = ("instance", "request_id", "detail")
    assert {k: v for k, v in foreign.json().items() if k not in strip} == {
        k: v for k, v in missing.json().items() if k not in strip
    }


def _permissions(dependant: Dependant) -> list[Permission]:
    seen: dict[int, Permission] = {}
    for dep in _walk(dependant):
        perm = route_permission(dep.call)
        if perm is not None:
            seen[id(dep.call)] = perm
    return list(seen.values())


def test_every_api_route_declares_exactly_one_permission(app: FastAPI) -> None:
    endpoints = [e for e in api_endpoints(app) if e.path.startswith("/api/")]
    assert len(endpoints) >= 5
    problems = {
        str(e): _permissions(e.dependant) for e in endpoints if len(_permissions(e.dependant)) != 1
    }
    assert not problems, problems


def test_project_routes_answer_403_to_a_tenant_credential_lacking_the_permission(
    app: FastAPI, client: TestClient, keys: Keys, tenants: TenantB
) -> None:
    """Inside its own tenant, a credential whose roles do not grant a route's permission
    gets 403 (tenant first, then permission), for every project route."""
    weak = {
        perm: keys.headers([r for r in Role if r not in roles], B)
        for perm, roles in MATRIX.items()
        if roles != frozenset(Role)  # every role may (e.g. project:read)
    }
    before = _state_of_b(app)
    failures = []
    for endpoint in _project_endpoints(app):
        (permission,) = _permissions(endpoint.dependant)
        headers = weak.get(permission)
        if headers is None:
            continue
        url, _ = concrete_path(endpoint, tenants.values())
        body = {} if endpoint.method in MUTATING else None
        resp = client.request(endpoint.method, url, json=body, headers=headers)
        if resp.status_code != 403:
            failures.append(f"{endpoint} ({permission}) -> {resp.status_code} {resp.text[:200]}")
    assert not failures, "\n".join(failures)
    assert _state_of_b(app) == before
