"""The audit trail through the API: management acts, exports and report downloads recorded
in their project's chain (in the act's own transaction), read back by compliance officers
and admins only, tenant by tenant; and the hash chain catching an altered, removed or
truncated entry — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import text

from dataintel.api.audit import AUDITED_PREFIXES, MUTATING
from dataintel.api.deps import _session
from dataintel.auth.permissions import Role
from dataintel.storage.metadata.audit_repository import append
from tests.conftest import Keys, assert_problem

BOTH = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
DAY = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def trail(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    resp = client.get("/v1/audit", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["entries"])


def verify(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    resp = client.get("/v1/audit/verify", headers=headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def shop(client: TestClient, admin: dict[str, str], project_id: str = "shop") -> None:
    """A project set up through the management API: created, platform template, deployed."""
    created = client.post(
        "/api/v1/projects", json={"id": project_id, "name": "Shop"}, headers=admin
    )
    assert created.status_code == 201, created.text
    base = f"/api/v1/projects/{project_id}"
    assert client.post(f"{base}/templates/platform", headers=admin).status_code == 201
    assert client.post(f"{base}/deployments", headers=admin).status_code == 201


@BOTH
def test_management_acts_are_recorded_and_the_chain_verifies(
    client: TestClient, keys: Keys, admin: dict[str, str]
) -> None:
    shop(client, admin)
    made = client.post(
        "/api/v1/api-keys",
        json={"name": "ci", "project_id": "shop", "roles": ["ingest"]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    key_id = made.json()["id"]
    assert client.delete(f"/api/v1/api-keys/{key_id}", headers=admin).status_code == 200
    assert client.post("/api/v1/projects/shop/deployments", headers=admin).status_code == 409

    officer = keys.headers([Role.COMPLIANCE], "shop")
    entries = trail(client, officer)
    assert [e["action"] for e in entries] == [
        "create_project",
        "enable_template",
        "deploy",
        "create_key",
        "revoke_key",
    ]  # the refused deploy (409) left nothing
    assert {e["chain"] for e in entries} == {"shop"}
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    admin_subject = entries[0]["actor"]
    assert admin_subject.startswith("key:")
    assert {e["actor"] for e in entries} == {admin_subject}
    assert entries[2]["detail"]["version"] == 1
    assert entries[3]["detail"]["key_id"] == key_id
    assert entries[3]["detail"]["roles"] == ["ingest"]
    assert "key" not in entries[3]["detail"]
    assert made.json()["key"] not in str(entries)
    assert entries[4]["target"] == f"key_id={key_id}"
    assert entries[1]["target"] == "template=platform"
    assert entries[1]["detail"]["route"] == "/api/v1/projects/{project_id}/templates/{template}"
    assert [e["prev_hash"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    assert entries[0]["prev_hash"] == "0" * 64

    check = verify(client, officer)
    assert check == {
        "chain": "shop",
        "valid": True,
        "entries": 5,
        "head_seq": 5,
        "head_hash": entries[-1]["hash"],
        "problems": [],
    }
    assert [e["action"] for e in trail(client, officer, action="create_key")] == ["create_key"]
    page = client.get("/v1/audit", params={"limit": 2}, headers=officer).json()
    assert [e["seq"] for e in page["entries"]] == [1, 2]
    assert page["next_after"] == 2
    rest = client.get("/v1/audit", params={"after": 2, "limit": 3}, headers=officer).json()
    assert [e["seq"] for e in rest["entries"]] == [3, 4, 5]
    assert rest["next_after"] is None


@BOTH
def test_an_altered_removed_or_cut_entry_is_reported(
    app: Any, client: TestClient, keys: Keys, admin: dict[str, str]
) -> None:
    shop(client, admin)
    for n in range(3):
        resp = client.put(
            "/api/v1/projects/shop/analytics-settings",
            json={"abandon_after": f"{10 + n}m"},
            headers=admin,
        )
        assert resp.status_code == 200, resp.text
    officer = keys.headers([Role.COMPLIANCE], "shop")
    assert verify(client, officer)["valid"] is True  # 6 entries
    engine = app.state.dataintel.sessions.kw["bind"]

    def sql(statement: str) -> None:
        with engine.begin() as conn:
            conn.execute(text(statement))

    sql("UPDATE audit_entries SET actor = 'key:someone-else' WHERE chain = 'shop' AND seq = 4")
    check = verify(client, officer)
    assert check["valid"] is False
    assert check["problems"] == [
        {"seq": 4, "problem": "the entry's content does not match its hash"}
    ]
    sql("DELETE FROM audit_entries WHERE chain = 'shop' AND seq = 2")
    problems = verify(client, officer)["problems"]
    assert {"seq": 2, "problem": "entries 2..2 are missing"} in problems
    sql("DELETE FROM audit_entries WHERE chain = 'shop' AND seq = 6")
    problems = verify(client, officer)["problems"]
    assert {"seq": 6, "problem": "the head says 6 entries, the chain holds 5"} in problems


def test_exports_and_report_downloads_are_recorded(
    client: TestClient, keys: Keys, admin: dict[str, str]
) -> None:
    shop(client, admin)
    events = [
        {
            "event_id": f"e{i}",
            "event": "cart_add",
            "timestamp": (DAY + timedelta(minutes=i)).isoformat(),
            "user_id": "alice@example.com",
            "cart_id": f"c{i}",
            "properties": {"product_id": "p"},
        }
        for i in range(7)
    ]
    ingest = keys.headers([Role.INGEST], "shop")
    sent = client.post("/ingest/shop/platform/batch?wait=processed", json=events, headers=ingest)
    assert sent.status_code == 200, sent.text
    assert sent.json()["processed"] is True
    analyst = keys.headers([Role.ANALYST], "shop")
    exported = client.get(
        "/v1/export/events",
        params={"format": "csv", "user_id": "alice@example.com"},
        headers=analyst,
    )
    assert exported.status_code == 200
    assert exported.text.count("\n") == 8
    queued = client.post(
        "/v1/reports/generate",
        json={"kind": "event_counts", "params": {}, "format": "json"},
        headers=analyst,
    )
    assert queued.status_code == 202, queued.text
    report_id = queued.json()["id"]
    deadline = time.monotonic() + 30
    while (got := client.get(f"/v1/reports/{report_id}", headers=analyst)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert got.status_code == 200, got.text

    entries = trail(client, keys.headers([Role.COMPLIANCE], "shop"))
    analyst_acts = [
        e for e in entries if e["action"] not in {"create_project", "enable_template", "deploy"}
    ]
    assert [e["action"] for e in analyst_acts] == [
        "export_events",
        "generate_report",
        "download_report",
    ]
    export = analyst_acts[0]["detail"]
    assert (export["rows"], export["complete"], export["format"]) == (7, True, "csv")
    assert export["filtered_by_user"] is True
    assert "alice" not in str(entries)  # the audit log holds no subject's id
    assert analyst_acts[1]["detail"]["report_id"] == report_id
    assert analyst_acts[2]["detail"]["report_id"] == report_id
    assert verify(client, keys.headers([Role.ADMIN], "shop"))["valid"] is True


def test_each_tenant_reads_its_own_trail_and_only_auditors_read_it(
    client: TestClient, keys: Keys, admin: dict[str, str]
) -> None:
    shop(client, admin, "shop")
    shop(client, admin, "rival")
    mine = keys.headers([Role.COMPLIANCE], "shop")
    assert {e["chain"] for e in trail(client, mine)} == {"shop"}
    assert_problem(client.get("/v1/audit", params={"project_id": "rival"}, headers=mine), 404)
    for role in (Role.ANALYST, Role.DEVELOPER, Role.INGEST, Role.SERVICE):
        assert_problem(client.get("/v1/audit", headers=keys.headers([role], "shop")), 403)
    assert_problem(client.get("/v1/audit"), 401)
    assert_problem(client.get("/v1/audit/global", headers=mine), 403)
    global_key = client.post(
        "/api/v1/api-keys", json={"name": "ops", "roles": ["compliance"]}, headers=admin
    )
    assert global_key.status_code == 201, global_key.text
    officer = {"Authorization": f"Bearer {global_key.json()['key']}"}
    entries = client.get("/v1/audit/global", headers=officer).json()["entries"]
    assert [e["action"] for e in entries] == ["create_key"]
    assert entries[0]["chain"] == "_global"
    assert client.get("/v1/audit/global/verify", headers=officer).json()["valid"] is True
    assert trail(client, officer, project_id="rival")[0]["chain"] == "rival"
    assert_problem(client.get("/v1/audit", params={"limit": 0}, headers=mine), 422, field="limit")


@BOTH
def test_concurrent_appends_keep_one_unbroken_chain(app: Any, keys: Keys) -> None:
    sessions = app.state.dataintel.sessions
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                with sessions.begin() as session:
                    append(session, "busy", f"worker{n}", "act", None, {"i": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with sessions() as session:
        from dataintel.audit.service import AuditService

        check = AuditService(session).verify("busy")
    assert (check.valid, check.entries, check.head_seq) == (True, 40, 40)


def test_every_management_write_route_runs_in_an_audited_session(app: Any) -> None:
    """A new write route under /api/ or /v1/reports cannot escape the trail: it must take
    the request session, whose commit appends the entry."""

    def uses_session(dependant: Any) -> bool:
        return any(d.call is _session or uses_session(d) for d in dependant.dependencies)

    routes = [
        r
        for r in iter_route_contexts(app.routes)
        if getattr(r, "dependant", None) is not None
        and set(r.methods or ()) & MUTATING
        and r.path.startswith(AUDITED_PREFIXES)
    ]
    assert len(routes) > 20
    escaping = [r.path for r in routes if not uses_session(r.dependant)]
    assert escaping == []
