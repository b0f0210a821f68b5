"""OpenTelemetry tracing, exported over OTLP/HTTP to a real receiver in the test (protobuf
decoded with the OTLP schema): one trace follows an event from the ingest request (its
caller's traceparent) through the Kafka append (the record's traceparent header) to the
processor's batch and the feature update; store calls and metadata statements are spans;
log lines carry the trace id; with tracing off (the default) nothing is exported."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from dataintel import tracing
from dataintel.api.logging import configure as configure_logs
from dataintel.main import create_app
from dataintel.settings import Settings
from tests.conftest import REDIS_URL, Keys, apply_yaml
from tests.faults.events import SHOP, forget_dedup_keys

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: every exported span, decoded."""

    spans: list[Any]


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scoped in resource.scope_spans:
                self.server.spans.extend(scoped.spans)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector(("127.0.0.1", 0), _Handler)
    server.spans = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(
    make_settings: Any, tmp_path: Any, kafka_broker: Any, collector: Collector
) -> Settings:
    forget_dedup_keys("shop")
    topic = f"trace-{uuid.uuid4().hex[:8]}"
    return make_settings(
        eventlog_url=kafka_broker.url(topic, 1)
        + "&session_timeout_ms=2000&heartbeat_interval_ms=200",
        cache_url=REDIS_URL,
        otel_traces_endpoint=f"http://127.0.0.1:{collector.server_address[1]}/v1/traces",
        log_level="info",
    )


def hex_id(raw: bytes) -> str:
    return raw.hex()


def test_one_trace_follows_an_event_from_ingest_to_the_feature_update(
    app: Any, keys: Keys, collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logs("info", json=True)  # JSON lines to this phase's (captured) stdout
    with TestClient(app, raise_server_exceptions=False) as client:
        keys.project("shop")
        apply_yaml(app, SHOP)
        ingest = keys.headers(["ingest"], "shop")
        now = datetime.now(UTC).isoformat()
        events = [
            {
                "event_id": uuid.uuid4().hex,
                "event": "cart_add",
                "timestamp": now,
                "user_id": "ada",
                "properties": {"price": 2.5},
            },
        ]
        sent = client.post(
            "/ingest/shop/web/batch?wait=processed",
            json=events,
            headers={**ingest, "traceparent": TRACEPARENT},
        )
        assert sent.status_code == 200, sent.text
        service = keys.headers(["service"], "shop")
        served = client.get("/features/shop/users/ada", headers=service)
        assert served.status_code == 200, served.text
    # Leaving the client stops the app: the provider is shut down and flushes its spans.
    assert not tracing.enabled()
    spans = collector.spans
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)

    (request,) = by_name["POST /ingest/{project_id}/{pipeline_id}/batch"]
    assert hex_id(request.trace_id) == CALLER_TRACE  # the caller's trace continues
    assert hex_id(request.parent_span_id) == "00f067aa0ba902b7"
    attributes = {a.key: a.value for a in request.attributes}
    assert attributes["http.response.status_code"].int_value == 200

    in_trace = [s for s in spans if hex_id(s.trace_id) == CALLER_TRACE]
    names = {s.name for s in in_trace}
    assert "eventlog.append" in names  # the Kafka append, a child of the request
    parts = [s for s in in_trace if s.name == "processor.batch.part"]
    assert parts, names  # the processor's work on this request's events, in its trace
    (batch,) = [s for s in by_name["processor.batch"] if s.span_id == parts[0].links[0].span_id]
    assert [hex_id(link.trace_id) for link in batch.links] == [CALLER_TRACE]
    under_batch = {s.name for s in spans if s.parent_span_id == batch.span_id}
    assert {"analytics.apply", "online.apply"} <= under_batch  # the sinks, the feature update
    assert any(s.name.startswith("metadata.") for s in spans)  # metadata statements
    assert any(s.name == "GET /features/{project_id}/users/{user_id}" for s in spans)

    logged = capsys.readouterr().out
    assert f'"trace_id":"{CALLER_TRACE}"' in logged  # the access line of the ingest request


def test_tracing_is_off_by_default(make_settings: Any, keys: Keys, collector: Collector) -> None:
    app = create_app(make_settings())
    with TestClient(app) as client:
        assert not tracing.enabled()
        assert client.get("/health/live").status_code == 200
    assert collector.spans == []
