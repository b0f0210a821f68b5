"""Derived features in the config plane: checked at config time, versioned, deployed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import assert_problem, seed_config

P = "/api/v1/projects/shop"


def _setup(app: Any, client: TestClient, keys: Any) -> dict[str, str]:
    keys.project("shop")
    seed_config(app, "shop")
    from dataintel.auth.permissions import Role

    return keys.headers([Role.ADMIN], "shop")


def values_of(client: TestClient, headers: dict[str, str]) -> list[str]:
    features = client.get(f"{P}/features", headers=headers).json()
    return [w["value_name"] for f in features for w in f["windows"]]


def test_create_read_update_delete(app: Any, client: TestClient, keys: Any) -> None:
    admin = _setup(app, client, keys)
    value = values_of(client, admin)[0]
    body = {"name": "twice", "expression": f"{value} * 2", "description": "x2"}
    created = client.post(f"{P}/derived-features", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["reads"] == [value]
    assert created.json()["version"] == 1
    same = client.patch(f"{P}/derived-features/twice", json={"description": "x2"}, headers=admin)
    assert same.json()["version"] == 1
    changed = client.patch(
        f"{P}/derived-features/twice", json={"expression": f"{value} * 3"}, headers=admin
    )
    assert changed.json()["version"] == 2
    listed = client.get(f"{P}/derived-features", headers=admin).json()
    assert [d["name"] for d in listed] == ["twice"]
    assert client.delete(f"{P}/derived-features/twice", headers=admin).status_code == 204
    assert_problem(client.get(f"{P}/derived-features/twice", headers=admin), 404)


def test_bad_expressions_are_refused_with_field_and_position(
    app: Any, client: TestClient, keys: Any
) -> None:
    admin = _setup(app, client, keys)
    unknown = client.post(
        f"{P}/derived-features", json={"name": "d", "expression": "1 + nope_1h"}, headers=admin
    )
    problem = assert_problem(unknown, 422, field="/body/expression")
    assert "unknown name 'nope_1h' at column 5" in problem["detail"]
    syntax = client.post(
        f"{P}/derived-features", json={"name": "d", "expression": "1 + * 2"}, headers=admin
    )
    assert "syntax error" in assert_problem(syntax, 422, field="/body/expression")["detail"]
    escape = client.post(
        f"{P}/derived-features",
        json={"name": "d", "expression": "().__class__.__bases__"},
        headers=admin,
    )
    assert "not allowed" in assert_problem(escape, 422, field="/body/expression")["detail"]


def test_cycles_are_refused(app: Any, client: TestClient, keys: Any) -> None:
    admin = _setup(app, client, keys)
    value = values_of(client, admin)[0]
    ok = client.post(
        f"{P}/derived-features", json={"name": "a", "expression": f"{value} + 1"}, headers=admin
    )
    assert ok.status_code == 201
    b = client.post(
        f"{P}/derived-features", json={"name": "b", "expression": "a + 1"}, headers=admin
    )
    assert b.status_code == 201, b.text
    cycle = client.patch(f"{P}/derived-features/a", json={"expression": "b + 1"}, headers=admin)
    assert "cycle" in assert_problem(cycle, 422, field="/body/expression")["detail"]


def test_deploy_records_derived_changes_and_refuses_broken_references(
    app: Any, client: TestClient, keys: Any
) -> None:
    admin = _setup(app, client, keys)
    value = values_of(client, admin)[0]
    client.post(
        f"{P}/derived-features", json={"name": "d", "expression": f"{value} + 1"}, headers=admin
    )
    pending = client.get(f"{P}/deployments/pending", headers=admin).json()
    assert any(c["kind"] == "derived" and c["key"] == "d" for c in pending["changes"])
    deployed = client.post(f"{P}/deployments", json={}, headers=admin)
    assert deployed.status_code == 201, deployed.text
    assert [d["name"] for d in deployed.json()["snapshot"]["derived"]] == ["d"]
    feature = value.rsplit("_", 1)[0]
    assert client.delete(f"{P}/features/{feature}", headers=admin).status_code == 204
    broken = client.post(f"{P}/deployments", json={}, headers=admin)
    assert_problem(broken, 422)
