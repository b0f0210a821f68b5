"""Alerts: one per incident (fingerprint), open → acknowledged → resolved, auto-resolved when
the condition clears; the API (filters, cursor, acknowledge, resolve, audit, permissions,
tenant isolation); signed webhook notifications through the leased outbox with retries;
the Prometheus gauge."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dataintel.config.deployments.active import CONFIGS
from dataintel.config.pipelines.webhooks import SIGNATURE_HEADER, verify_signature
from dataintel.quality import alerts
from dataintel.quality.alerts_notify import AlertNotifier
from dataintel.storage.metadata.audit_models import AuditEntry
from dataintel.storage.metadata.monitoring_models import AlertNotification
from dataintel.storage.metadata.types import utcnow
from tests.conftest import Keys, apply_yaml, assert_problem

SECRET = "quality-secret-0123456789"
BOTH = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def shop(project: str, url: str | None = None) -> str:
    hook = f"\nmonitoring: {{webhook_url: '{url}', webhook_secret: {SECRET}}}\n" if url else ""
    return (
        f"project: {{id: {project}, name: Shop}}\n"
        "pipelines: [{id: web, name: Web, events: [{name: view}]}]\n" + hook
    )


def observe(app: Any, project: str, failing: bool, **extra: Any) -> int | None:
    values: dict[str, Any] = {
        "fingerprint": "rule:r1",
        "kind": "rule",
        "title": "null share of sku above 1%",
        "detail": {"share": 0.2},
        "source": "quality.rules",
        **extra,
    }
    with app.state.dataintel.sessions.begin() as session:
        found = alerts.observe(session, project, failing=failing, **values)
        return None if found is None else found.id


def outbox(app: Any) -> list[str]:
    with app.state.dataintel.sessions() as session:
        rows = session.scalars(select(AlertNotification).order_by(AlertNotification.id))
        return [r.payload["type"] for r in rows]


@BOTH
def test_one_alert_per_incident_with_severity_changes_and_auto_resolve(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    assert observe(app, "shop", failing=False) is None  # nothing to clear
    first = observe(app, "shop", failing=True)
    assert observe(app, "shop", failing=True) == first  # the same incident, not a new alert
    assert observe(app, "shop", failing=True, severity="critical") == first
    assert observe(app, "shop", failing=False) == first  # cleared: resolved by itself
    admin = keys.headers(["admin"], "shop")
    alert = client.get(f"/v1/quality/alerts/{first}", headers=admin).json()
    assert alert["status"] == "resolved"
    assert alert["resolution"] == "cleared"
    assert alert["occurrences"] == 3
    assert alert["severity"] == "critical"
    assert outbox(app) == [
        "quality.alert.opened",
        "quality.alert.severity_changed",
        "quality.alert.resolved",
    ]
    again = observe(app, "shop", failing=True)  # failing again later: a new incident
    assert again is not None
    assert again != first


def test_routes_filter_page_acknowledge_resolve_audit_and_isolate(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    keys.project("other")
    ids = [observe(app, "shop", True, fingerprint=f"rule:{i}", kind="rule") for i in range(3)]
    drift = observe(app, "shop", True, fingerprint="drift:f", kind="drift", severity="critical")
    foreign = observe(app, "other", True)
    admin = keys.headers(["admin"], "shop")
    page = client.get("/v1/quality/alerts?limit=2", headers=admin).json()
    assert [a["id"] for a in page["alerts"]] == [drift, ids[2]]
    rest = client.get(f"/v1/quality/alerts?limit=2&after={page['next_after']}", headers=admin)
    assert [a["id"] for a in rest.json()["alerts"]] == [ids[1], ids[0]]
    assert rest.json()["next_after"] is None
    kinds = client.get("/v1/quality/alerts?kind=drift&severity=critical", headers=admin).json()
    assert [a["id"] for a in kinds["alerts"]] == [drift]

    ack = client.post(f"/v1/quality/alerts/{ids[0]}/acknowledge", headers=admin)
    assert ack.status_code == 200, ack.text
    assert ack.json()["status"] == "acknowledged"
    assert ack.json()["acknowledged_by"].startswith("key:")
    done = client.post(
        f"/v1/quality/alerts/{ids[1]}/resolve", json={"reason": "false_positive"}, headers=admin
    )
    assert done.json()["status"] == "resolved"
    assert done.json()["resolution"] == "false_positive"
    statuses = client.get("/v1/quality/alerts?status=open", headers=admin).json()["alerts"]
    assert {a["id"] for a in statuses} == {ids[2], drift}
    with app.state.dataintel.sessions() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.chain == "shop"))
        assert {"acknowledge_alert", "resolve_alert"} <= set(actions)

    # another project's alert does not exist for this one
    assert_problem(client.get(f"/v1/quality/alerts/{foreign}", headers=admin), 404)
    assert_problem(client.post(f"/v1/quality/alerts/{foreign}/acknowledge", headers=admin), 404)
    # an analyst reads alerts but may not acknowledge or resolve them
    analyst = keys.headers(["analyst"], "shop")
    assert client.get("/v1/quality/alerts", headers=analyst).status_code == 200
    assert_problem(client.post(f"/v1/quality/alerts/{ids[2]}/acknowledge", headers=analyst), 403)
    # bad input names the field
    bad = client.post(f"/v1/quality/alerts/{ids[2]}/resolve", json={"reason": "x"}, headers=admin)
    assert_problem(bad, 422, field="reason")
    assert_problem(client.get("/v1/quality/alerts?limit=0", headers=admin), 422, field="limit")
    assert_problem(client.get("/v1/quality/alerts/99999999999", headers=admin), 422)
    assert_problem(client.get("/v1/quality/alerts?status=gone", headers=admin), 422)


class Receiver:
    """A real HTTP server that records what it receives and answers 500 ``fail`` times."""

    def __init__(self, fail: int) -> None:
        self.fail, self.received, self.answers = fail, [], []  # type: ignore[var-annotated]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                status = 500 if outer.fail > 0 else 204
                outer.fail -= 1
                outer.answers.append(status)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(fail=2)
    yield found
    found.server.shutdown()


def test_notifications_are_signed_retried_and_never_lost(
    app: Any, client: TestClient, keys: Keys, receiver: Receiver
) -> None:
    keys.project("shop")
    apply_yaml(app, shop("shop", receiver.url))
    state = app.state.dataintel
    configs = state.port(CONFIGS)
    notifier = AlertNotifier(
        state.sessions, lambda p: configs.get(p).snapshot.monitoring, backoff_base_s=0.0
    )
    alert = observe(app, "shop", failing=True)
    counts = [asyncio.run(notifier.deliver("shop")) for _ in range(3)]
    assert counts == [
        {"delivered": 0, "failed": 1, "dropped": 0},
        {"delivered": 0, "failed": 1, "dropped": 0},
        {"delivered": 1, "failed": 0, "dropped": 0},
    ]
    assert receiver.answers == [500, 500, 204]  # the retries were seen
    assert outbox(app) == []  # delivered: gone from the outbox
    for headers, body in receiver.received:
        assert verify_signature(headers[SIGNATURE_HEADER], body, [SECRET], utcnow())
        assert not verify_signature(headers[SIGNATURE_HEADER], body, ["x" * 20], utcnow())
        assert headers["Idempotency-Key"] == receiver.received[0][0]["Idempotency-Key"]
    payload = receiver.received[-1][1]
    assert b'"quality.alert.opened"' in payload
    assert f'"id":{alert}'.encode() in payload
    observe(app, "shop", failing=False)
    assert asyncio.run(notifier.deliver("shop"))["delivered"] == 1
    assert b'"quality.alert.resolved"' in receiver.received[-1][1]


def test_a_project_without_a_webhook_drops_its_notifications(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("shop")
    apply_yaml(app, shop("shop"))
    configs = app.state.dataintel.port(CONFIGS)
    notifier = AlertNotifier(
        app.state.dataintel.sessions, lambda p: configs.get(p).snapshot.monitoring
    )
    observe(app, "shop", failing=True)
    assert asyncio.run(notifier.deliver())["dropped"] == 1
    with app.state.dataintel.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AlertNotification)) == 0


def test_open_alerts_are_a_gauge_without_project_labels(
    app: Any, client: TestClient, keys: Keys
) -> None:
    keys.project("secret-shop")
    observe(app, "secret-shop", True, severity="critical")
    observe(app, "secret-shop", True, fingerprint="drift:x", kind="drift")
    text = client.get("/metrics").text
    assert 'dataintel_quality_alerts_open{kind="rule",severity="critical"} 1.0' in text
    assert 'dataintel_quality_alerts_open{kind="drift",severity="warning"} 1.0' in text
    assert "dataintel_quality_notifications_pending 2.0" in text
    assert "secret-shop" not in text
