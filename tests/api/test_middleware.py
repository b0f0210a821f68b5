"""Request id, access log, body-size limit and Prometheus metrics (one ASGI middleware)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from dataintel.api import logging as dataintel_logging
from dataintel.auth.permissions import Role
from dataintel.main import create_app
from dataintel.settings import Settings
from tests.conftest import Keys, assert_problem

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_well_formed_request_id_is_accepted_and_echoed(client: TestClient) -> None:
    resp = client.get("/health/live", headers={"X-Request-ID": "abc-123.x:y_z"})
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "abc-123.x:y_z"


@pytest.mark.parametrize(
    "sent", [None, "", "has space", "x" * 129, "semi;colon", "new\tline", "ünï"]
)
def test_request_id_is_generated_when_absent_or_malformed(
    client: TestClient, sent: str | None
) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent.encode()}
    resp = client.get("/health/live", headers=headers)
    assert resp.status_code == 200
    assert HEX32.match(resp.headers["x-request-id"])


def test_generated_request_ids_differ(client: TestClient) -> None:
    ids = {client.get("/health/live").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def _log_lines(out: str) -> list[dict[str, Any]]:
    lines = []
    for line in out.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


@pytest.fixture
def captured_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """capsys for apps built inside the test; afterwards structlog writes to the real
    stdout again (it keeps the stream it was configured with, and capsys's closes)."""
    yield capsys
    dataintel_logging.configure("warning", json=True)


def test_access_log_line_is_json_with_request_id_route_status_duration(
    captured_logs: pytest.CaptureFixture[str], make_settings: Callable[..., Settings]
) -> None:
    capsys = captured_logs
    app = create_app(make_settings(log_level="info"))
    keys = Keys(app)
    keys.project("p1")
    headers = {**keys.headers([Role.ADMIN]), "X-Request-ID": "trace-42"}
    with TestClient(app, raise_server_exceptions=False) as client:
        capsys.readouterr()
        assert client.get("/api/v1/projects/p1", headers=headers).status_code == 200
        assert client.get("/api/v1/projects/p2", headers=headers).status_code == 404
    access = [r for r in _log_lines(capsys.readouterr().out) if r.get("event") == "request"]
    assert len(access) == 2, access
    ok, missing = access
    assert ok["request_id"] == "trace-42"
    assert ok["route"] == "/api/v1/projects/{project_id}"
    assert ok["path"] == "/api/v1/projects/p1"
    assert ok["method"] == "GET"
    assert ok["status"] == 200
    assert isinstance(ok["duration_ms"], int | float)
    assert ok["duration_ms"] >= 0
    assert ok["principal"].startswith("key:")
    assert ok["level"] == "info"
    assert ok["timestamp"]
    assert missing["status"] == 404
    assert missing["route"] == "/api/v1/projects/{project_id}"


def test_request_id_is_bound_to_log_lines_of_the_handler_and_of_errors(
    captured_logs: pytest.CaptureFixture[str], make_settings: Callable[..., Settings]
) -> None:
    capsys = captured_logs
    app = create_app(make_settings(log_level="info"))
    handler_log = structlog.get_logger("test.handler")

    def sync_handler() -> dict[str, str]:
        handler_log.info("inside sync handler")
        return {}

    async def async_handler() -> dict[str, str]:
        handler_log.info("inside async handler")
        return {}

    def boom() -> None:
        raise RuntimeError("kaboom")

    app.add_api_route("/test/sync", sync_handler)
    app.add_api_route("/test/async", async_handler)
    app.add_api_route("/test/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        capsys.readouterr()
        assert client.get("/test/sync", headers={"X-Request-ID": "sync-1"}).status_code == 200
        assert client.get("/test/async", headers={"X-Request-ID": "async-1"}).status_code == 200
        assert client.get("/test/boom", headers={"X-Request-ID": "err-7"}).status_code == 500
        client.get("/health/live")  # no id leaks into the next request
    lines = _log_lines(capsys.readouterr().out)
    inside = {r["event"]: r.get("request_id") for r in lines if r["event"].startswith("inside")}
    assert inside == {"inside sync handler": "sync-1", "inside async handler": "async-1"}
    last = [r for r in lines if r.get("event") == "request"][-1]
    assert last["route"] == "/health/live"
    assert last["request_id"] not in {"sync-1", "async-1", "err-7"}
    error = next(r for r in lines if r.get("event") == "unhandled error")
    assert error["request_id"] == "err-7"
    assert "kaboom" in error["exception"]
    access = next(r for r in lines if r.get("route") == "/test/boom")
    assert access["status"] == 500
    assert access["request_id"] == "err-7"


@pytest.fixture
def small_body_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    app = create_app(make_settings(max_body_bytes=2048))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(Keys(app).headers([Role.ADMIN]))
        yield client


def _assert_too_large(resp: Any) -> None:
    body = assert_problem(resp, 413)
    assert body["limit_bytes"] == 2048
    assert "2048" in body["detail"]
    assert resp.headers["x-request-id"]


def test_body_over_limit_with_content_length_is_413(small_body_client: TestClient) -> None:
    payload = json.dumps({"id": "p1", "name": "x" * 4000})
    _assert_too_large(
        small_body_client.post(
            "/api/v1/projects", content=payload, headers={"Content-Type": "application/json"}
        )
    )


def test_streamed_body_over_limit_without_content_length_is_413(
    small_body_client: TestClient,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"id": "p1", "name": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    resp = small_body_client.post(
        "/api/v1/projects", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in resp.request.headers
    _assert_too_large(resp)


def test_body_under_limit_passes(small_body_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"id": "p1", '
        yield b'"name": "small"}'

    resp = small_body_client.post(
        "/api/v1/projects", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 201, resp.text


def _samples(text: str, metric: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(metric + "{")]


def test_metrics_are_labelled_with_the_route_template(
    client: TestClient, keys: Keys, admin: dict[str, str]
) -> None:
    for pid in ("p1", "p2", "p3"):
        keys.project(pid)
        assert client.get(f"/api/v1/projects/{pid}", headers=admin).status_code == 200
    client.get("/no/such/thing")
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    totals = _samples(text, "dataintel_http_requests_total")
    template = 'method="GET",route="/api/v1/projects/{project_id}",status="200"'
    assert any(template in s and s.endswith(" 3.0") for s in totals), totals
    assert not any("/api/v1/projects/p1" in s for s in totals)
    assert any('route="<unmatched>",status="404"' in s for s in totals)
    counts = _samples(text, "dataintel_http_request_duration_seconds_count")
    assert any(template in s and s.endswith(" 3.0") for s in counts), counts
    buckets = _samples(text, "dataintel_http_request_duration_seconds_bucket")
    assert any(template in s and 'le="+Inf"' in s for s in buckets)


def test_metrics_of_two_apps_do_not_mix(make_settings: Callable[..., Settings]) -> None:
    one, two = create_app(make_settings()), create_app(make_settings())
    with TestClient(one) as c1, TestClient(two) as c2:
        c1.get("/health/live")
        c1.get("/health/live")
        live = 'route="/health/live",status="200"'
        assert any(
            live in s for s in _samples(c1.get("/metrics").text, "dataintel_http_requests_total")
        )
        assert not any(
            live in s for s in _samples(c2.get("/metrics").text, "dataintel_http_requests_total")
        )
