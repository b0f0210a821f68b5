"""Every error the service returns is RFC 9457 problem+json, whatever produced it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError, OperationalError

from dataintel.api.deps import SessionDep
from dataintel.auth.permissions import Role
from dataintel.errors import Conflict, ServiceError
from dataintel.storage.errors import InvalidQuery, StorageError
from dataintel.storage.metadata.models import Project
from tests.conftest import Keys, assert_problem


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/no/such/route"), 404)
    assert body["instance"] == "/no/such/route"
    assert body["type"].endswith("/not-found")


def test_wrong_method_is_a_405_problem_with_allow(client: TestClient) -> None:
    resp = client.delete("/health/live")
    assert_problem(resp, 405)
    assert "GET" in resp.headers["allow"]


def test_missing_credentials_is_a_401_problem(client: TestClient) -> None:
    resp = client.get("/api/v1/projects")
    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_validation_error_lists_each_field(client: TestClient, admin: dict[str, str]) -> None:
    resp = client.post(
        "/api/v1/projects", json={"id": "Not A Slug", "name": "", "bogus": 1}, headers=admin
    )
    body = assert_problem(resp, 422, field="/body/id")
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"/body/id", "/body/name", "/body/bogus"} <= pointers
    for err in body["errors"]:
        assert err["loc"][0] == "body"
        assert err["pointer"] == "/" + "/".join(str(p) for p in err["loc"])
        assert err["msg"]
        assert err["type"]


def test_invalid_query_and_path_parameters_are_422(
    client: TestClient, admin: dict[str, str]
) -> None:
    resp = client.get("/api/v1/api-keys", params={"include_revoked": "maybe"}, headers=admin)
    assert_problem(resp, 422, field="/query/include_revoked")
    resp = client.get("/api/v1/projects/NOT_VALID", headers=admin)
    assert_problem(resp, 422, field="/path/project_id")


def test_malformed_json_body_is_a_422_problem_not_500(
    client: TestClient, admin: dict[str, str]
) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    resp = client.post("/api/v1/projects", content=b'{"id": "p1", "name": ', headers=headers)
    body = assert_problem(resp, 422, field="/body")
    assert body["errors"][0]["loc"] == ["body"]
    assert "JSON" in body["errors"][0]["msg"]


def test_non_object_json_body_is_a_422_problem(client: TestClient, admin: dict[str, str]) -> None:
    resp = client.post("/api/v1/projects", json=[1, 2, 3], headers=admin)
    assert_problem(resp, 422, field="/body")


def test_conflict_is_a_409_problem(client: TestClient, admin: dict[str, str]) -> None:
    payload = {"id": "shop", "name": "Shop"}
    assert client.post("/api/v1/projects", json=payload, headers=admin).status_code == 201
    body = assert_problem(client.post("/api/v1/projects", json=payload, headers=admin), 409)
    assert "shop" in body["detail"]


def test_forbidden_is_a_403_problem(client: TestClient, keys: Keys) -> None:
    keys.project("p1")
    headers = keys.headers([Role.DEVELOPER], "p1")
    resp = client.post("/api/v1/projects", json={"id": "p2", "name": "x"}, headers=headers)
    assert_problem(resp, 403)


def test_problem_carries_request_id_and_instance(client: TestClient) -> None:
    resp = client.get("/api/v1/projects", headers={"X-Request-ID": "req-123"})
    body = assert_problem(resp, 401)
    assert body["request_id"] == "req-123"
    assert body["instance"] == "/api/v1/projects"
    assert resp.headers["x-request-id"] == "req-123"


def _add_route(app: FastAPI, path: str, exc: Exception) -> None:
    def endpoint() -> dict[str, Any]:
        raise exc

    app.add_api_route(path, endpoint, methods=["GET"])


def test_unexpected_exception_is_a_500_problem_without_internals(app: FastAPI) -> None:
    _add_route(app, "/test/boom", RuntimeError("secret-internal-detail at /srv/app.py"))
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/test/boom", headers={"X-Request-ID": "boom-1"})
    body = assert_problem(resp, 500)
    assert body["type"].endswith("/internal")
    assert body["request_id"] == "boom-1"
    assert resp.headers["x-request-id"] == "boom-1"
    text = resp.text
    for leak in ("secret-internal-detail", "Traceback", "RuntimeError", ".py"):
        assert leak not in text


def test_database_errors_are_409_and_503_problems_without_sql(app: FastAPI) -> None:
    secret_sql = "INSERT INTO projects (id) VALUES ('secret-sql')"
    _add_route(app, "/test/race", IntegrityError(secret_sql, {}, Exception("duplicate key")))
    _add_route(app, "/test/down", OperationalError(secret_sql, {}, Exception("refused")))
    with TestClient(app, raise_server_exceptions=False) as client:
        race = client.get("/test/race")
        down = client.get("/test/down")
    assert_problem(race, 409)
    assert_problem(down, 503)
    assert down.headers["retry-after"] == "1"
    for resp in (race, down):
        assert "secret-sql" not in resp.text
        assert "duplicate" not in resp.text


def test_a_commit_that_loses_a_race_is_a_409_not_a_200(app: FastAPI, keys: Keys) -> None:
    """The unit of work commits before the response is sent: a constraint violation at
    commit (a concurrent insert of the same id) is answered 409, and nothing is stored."""
    keys.project("p1")

    def endpoint(session: SessionDep) -> dict[str, str]:
        session.add(Project(id="p1", name="duplicate"))
        session.add(Project(id="p2", name="would be half of the change"))
        return {"created": "p1"}

    app.add_api_route("/test/dup", endpoint, methods=["POST"])
    with TestClient(app, raise_server_exceptions=False) as client:
        assert_problem(client.post("/test/dup"), 409)
    with app.state.dataintel.sessions() as session:
        assert session.get(Project, "p2") is None
        assert session.get(Project, "p1").name == "Test shop"  # type: ignore[union-attr]


def test_service_errors_render_their_own_status(app: FastAPI) -> None:
    _add_route(app, "/test/conflict", Conflict("already there", resource="thing"))
    _add_route(app, "/test/base", ServiceError("generic failure"))
    with TestClient(app, raise_server_exceptions=False) as client:
        body = assert_problem(client.get("/test/conflict"), 409)
        assert body["resource"] == "thing"
        assert body["detail"] == "already there"
        assert_problem(client.get("/test/base"), 500)


def test_storage_errors_become_service_errors_in_one_place(app: FastAPI) -> None:
    """Storage knows no HTTP: the problem handler maps its errors (400 / else 503)."""
    _add_route(app, "/test/bad-query", InvalidQuery("the query does not parse: x"))
    _add_route(app, "/test/engine-down", StorageError("connection refused"))
    with TestClient(app, raise_server_exceptions=False) as client:
        body = assert_problem(client.get("/test/bad-query"), 400)
        assert body["detail"] == "the query does not parse: x"
        assert body["type"].endswith("/bad-request")
        body = assert_problem(client.get("/test/engine-down"), 503)
        assert "connection refused" in body["detail"]


def test_openapi_declares_problem_responses_for_every_api_operation(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    api_ops = [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if path.startswith("/api/")
    ]
    assert api_ops
    for path, method, op in api_ops:
        for status in ("401", "403", "404", "429", "503"):
            content = op["responses"][status]["content"]
            assert list(content) == ["application/problem+json"], (path, method, status)
        if "requestBody" in op:
            assert {"413", "422"} <= set(op["responses"]), (path, method)
        if method in {"post", "put", "patch", "delete"}:
            assert "409" in op["responses"], (path, method)
        assert op["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "401" not in doc["paths"]["/health/live"]["get"]["responses"]
    assert "security" not in doc["paths"]["/health/live"]["get"]
