"""The hot GET routes (user and cart vectors) are served without FastAPI's dependency
solving when their inputs are valid (``api.fast_scope.HotRoute``): the answers, the errors
and their order, rate limits and the OpenAPI description must be what the declared
dependencies give."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from tests.conftest import Keys, assert_problem
from tests.features.test_serving import Store, store  # noqa: F401 (the fixture)

from dataintel.auth.permissions import Role
from dataintel.main import create_app
from dataintel.settings import Settings


def test_hot_route_vector_equals_the_batch_routes(store: Store) -> None:  # noqa: F811
    hot = store.get("/features/store/users/u1")
    batch = store.client.post(
        "/features/store/users/batch", json={"user_ids": ["u1"]}, headers=store.service
    ).json()["results"][0]
    for vector in (hot, batch):  # the only values that depend on t (no event in between)
        del vector["as_of"], vector["values"]["minutes_since_sku"]
    assert hot == batch
    assert hot["values"]["adds_24h"] == 3
    picked = store.get("/features/store/users/u1", features="adds_5m, spend")
    assert set(picked["values"]) == {"adds_5m", "spend_1h", "spend_7d"}


def test_errors_and_their_order_are_the_dependencies(store: Store) -> None:  # noqa: F811
    get = store.client.get
    assert_problem(get("/features/store/users/u1"), 401)
    assert_problem(get("/features/store/users/u1", headers={"X-API-Key": "di_nope"}), 401)
    # invalid input without credentials: authentication is still checked first
    assert_problem(get("/features/Bad!/users/u1"), 401)
    headers = store.service
    assert_problem(get("/features/Bad!/users/u1", headers=headers), 422, field="project_id")
    # a trailing newline is not a valid project id (not a 404 for a project "store\n")
    assert_problem(get("/features/store%0A/users/u1", headers=headers), 422, field="project_id")
    long_id = "x" * 257
    assert_problem(get(f"/features/store/users/{long_id}", headers=headers), 422, field="user_id")
    assert get(f"/features/store/users/{'x' * 256}", headers=headers).status_code == 200
    features = "a" * 10_001
    resp = get("/features/store/users/u1", headers=headers, params={"features": features})
    assert_problem(resp, 422, field="features")
    resp = get("/features/store/users/u1", headers=headers, params={"features": "nope"})
    assert_problem(resp, 422, field="features")
    store.keys.project("other")
    assert_problem(get("/features/other/users/u1", headers=headers), 404)
    assert_problem(get("/features/missing/users/u1", headers=headers), 404)
    assert_problem(get("/features/store/users/u1", headers=store.ingest), 403)


def test_cart_route_resolves_the_project_like_its_dependency(store: Store) -> None:  # noqa: F811
    get = store.client.get
    assert get("/v1/features/c1", headers=store.service).json()["values"]["cart_value_1h"] == 30.0
    resp = get("/v1/features/c1", headers=store.service, params={"project_id": "store"})
    assert resp.status_code == 200
    resp = get("/v1/features/c1", headers=store.service, params={"project_id": "BAD"})
    assert_problem(resp, 422, field="project_id")
    admin = store.keys.headers([Role.ADMIN])  # global: spans every project
    assert_problem(get("/v1/features/c1", headers=admin), 422, field="project_id")
    assert get("/v1/features/c1", headers=admin, params={"project_id": "store"}).status_code == 200
    assert_problem(get(f"/v1/features/{'c' * 257}", headers=store.service), 422, field="cart_id")
    assert_problem(get("/v1/features/c1", headers=store.ingest), 403)


def test_rate_limit_applies_to_the_hot_route(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(rate_limit="2/minute"))
    keys = Keys(app)
    keys.project("p1")
    headers = keys.headers([Role.SERVICE], "p1")
    with TestClient(app, raise_server_exceptions=False) as client:
        statuses = [client.get("/features/p1/users/u1", headers=headers).status_code]
        statuses.append(client.get("/v1/features/c1", headers=headers).status_code)
        resp = client.get("/features/p1/users/u1", headers=headers)
    assert statuses == [200, 200]
    assert_problem(resp, 429)
    assert int(resp.headers["retry-after"]) >= 1


def test_openapi_still_documents_the_hot_routes(client: TestClient) -> None:
    spec: dict[str, Any] = client.get("/openapi.json").json()
    op = spec["paths"]["/features/{project_id}/users/{user_id}"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["user_id"]["schema"]["maxLength"] == 256
    assert params["project_id"]["schema"]["pattern"]
    assert "features" in params
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "EntityFeatures"
    )
    cart = spec["paths"]["/v1/features/{cart_id}"]["get"]
    assert {p["name"] for p in cart["parameters"]} >= {"cart_id", "project_id", "features"}
