"""Out-of-range numbers and times, NUL characters and duplicate JSON keys are 4xx problems
naming the field on both metadata stores, never a 500 from a driver; OpenAPI shows the
limits (ISSUE-8 §2)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Keys, assert_problem, seed_config

DEAD = "/api/v1/projects/p1/pipelines/web/dead-letters"
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def p1(app: Any, keys: Keys) -> str:
    keys.project("p1")
    seed_config(app, "p1")
    return "p1"


@BOTH
@pytest.mark.usefixtures("p1")
@pytest.mark.parametrize("cursor", [str(2**31), "4294967296", "9999999999"])
def test_dead_letter_cursor_beyond_32_bits_is_422(
    client: TestClient, admin: dict[str, str], cursor: str
) -> None:
    resp = client.get(DEAD, params={"cursor": cursor}, headers=admin)
    assert_problem(resp, 422, field="cursor")


@BOTH
@pytest.mark.usefixtures("p1")
@pytest.mark.parametrize("bad", [2**31, 2**63, 2**64, 0, -1])
def test_replay_ids_beyond_the_id_column_are_422(
    client: TestClient, admin: dict[str, str], bad: int
) -> None:
    resp = client.post(f"{DEAD}/replay", json={"ids": [1, bad]}, headers=admin)
    assert_problem(resp, 422, field="ids")


@BOTH
@pytest.mark.usefixtures("p1")
@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00"]
)
def test_dead_letter_times_out_of_range_are_422(
    client: TestClient, admin: dict[str, str], when: str
) -> None:
    for name in ("since", "until"):
        resp = client.get(DEAD, params={name: when}, headers=admin)
        assert_problem(resp, 422, field=name)
    replay = client.post(f"{DEAD}/replay", json={"since": when}, headers=admin)
    assert_problem(replay, 422, field="since")


@pytest.mark.usefixtures("p1")
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "0001-01-01T00:00:00"}, "start"),
        ({"end": "9999-12-31T23:59:59Z"}, "end"),
        ({"start": "1969-12-31T23:59:59Z"}, "start"),
        ({"cursor": "0001-01-01T00:00:00Z,e1"}, "cursor"),
        ({"cursor": "9999-12-31T23:59:59.999999Z,e1"}, "cursor"),
    ],
)
def test_export_times_the_analytics_store_cannot_hold_are_422(
    client: TestClient, keys: Keys, params: dict[str, str], field: str
) -> None:
    headers = keys.headers(["analyst"], "p1")
    assert_problem(
        client.get("/v1/export/events", params=params, headers=headers), 422, field=field
    )
    ok = {"start": "1970-01-01T00:00:00Z", "end": "2299-12-31T23:59:59Z"}
    assert client.get("/v1/export/events", params=ok, headers=headers).status_code == 200


@BOTH
def test_api_key_expiry_out_of_range_is_422(client: TestClient, admin: dict[str, str]) -> None:
    for when in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00-01:00"):
        body = {"name": "k", "roles": ["admin"], "expires_at": when}
        resp = client.post("/api/v1/api-keys", json=body, headers=admin)
        assert_problem(resp, 422, field="expires_at")


@BOTH
@pytest.mark.usefixtures("p1")
@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/projects", {"id": "p2", "name": "a\u0000b"}, "/body/name"),
        (
            "POST",
            "/api/v1/projects",
            {"id": "p2", "name": "x", "description": "\u0000"},
            "description",
        ),
        ("PATCH", "/api/v1/projects/p1/pipelines/web", {"description": "x\u0000"}, "description"),
        ("POST", "/api/v1/projects/p1/pipelines", {"id": "w2", "name": "W\u0000"}, "/body/name"),
        (
            "PATCH",
            "/api/v1/projects/p1/pipelines/web/events/cart_add",
            {"description": "\u0000"},
            "description",
        ),
        ("PATCH", "/api/v1/projects/p1/features/f1", {"description": "a\u0000"}, "description"),
        ("POST", "/api/v1/projects/p1/deployments", {"message": "v1\u0000"}, "message"),
        ("POST", "/api/v1/api-keys", {"name": "k\u0000", "roles": ["admin"]}, "/body/name"),
        ("POST", "/api/v1/projects/p1/pipelines", {"id": "w3", "name": "W", "x\u0000": 1}, "x"),
    ],
)
def test_nul_characters_in_config_text_are_422_naming_the_field(
    client: TestClient,
    admin: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    resp = client.request(method, path, json=body, headers=admin)
    problem = assert_problem(resp, 422, field=field)
    assert "NUL" in problem["detail"]


@BOTH
@pytest.mark.usefixtures("p1")
def test_duplicate_keys_in_an_api_key_body_are_refused(
    client: TestClient, admin: dict[str, str]
) -> None:
    raw = b'{"name": "k", "project_id": "p1", "roles": ["ingest"], "roles": ["admin"]}'
    headers = {**admin, "Content-Type": "application/json"}
    resp = client.post("/api/v1/api-keys", content=raw, headers=headers)
    problem = assert_problem(resp, 422, field="roles")
    assert "duplicate key 'roles'" in problem["detail"]
    listed = client.get("/api/v1/api-keys", params={"project_id": "p1"}, headers=admin).json()
    assert listed == []  # nothing was created
    nested = b'{"id": "w4", "name": "W", "events": [{"name": "a", "name": "b"}]}'
    resp = client.post("/api/v1/projects/p1/pipelines", content=nested, headers=headers)
    assert_problem(resp, 422, field="name")
    project = b'{"id": "p7", "id": "p8", "name": "x"}'
    assert_problem(client.post("/api/v1/projects", content=project, headers=headers), 422)


def test_openapi_shows_the_bounds(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    ids = schemas["DeadLetterReplay"]["properties"]["ids"]["anyOf"][0]["items"]
    assert (ids["minimum"], ids["maximum"]) == (1, 2**31 - 1)
    export = spec["paths"]["/v1/export/events"]["get"]["parameters"]
    start = next(p for p in export if p["name"] == "start")["schema"]["anyOf"][0]
    assert start["formatMinimum"] == "1970-01-01T00:00:00Z"
    assert start["formatMaximum"] == "2299-12-31T23:59:59.999999Z"
    expires = schemas["ApiKeyCreate"]["properties"]["expires_at"]["anyOf"][0]
    assert expires["format"] == "date-time"
    assert "formatMaximum" in expires
    deployments = spec["paths"]["/api/v1/projects/{project_id}/deployments"]["get"]["parameters"]
    offset = next(p for p in deployments if p["name"] == "offset")["schema"]
    assert offset["maximum"] == 2**31 - 1
