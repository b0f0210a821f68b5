"""OpenTelemetry tracing: off by default, one switch, no cost on the hot paths when off.

With ``otel_traces_endpoint`` set (an OTLP/HTTP collector, e.g.
``http://collector:4318/v1/traces``), ``configure`` installs an SDK tracer provider that
batches spans to it. Then:

- every HTTP request is a SERVER span (``GET /v1/features/...``, the route template), child
  of the caller's W3C ``traceparent`` when it sends one;
- every call to a port (event log, analytics store, online store, metadata store) is a
  CLIENT span (``analytics.sql``), made by the proxies of ``traced``;
- every processor micro-batch is a span linked to the ingest requests whose events it
  applies, and each of those requests' traces gets a child span for its events' part of the
  batch: the trace context rides in each Kafka record's ``traceparent`` header, so one trace
  follows an event from ingest to the feature update;
- JSON log lines carry the ``trace_id`` and ``span_id`` of the span they were written in.

A leaf: imports nothing of the project, so every floor may use it.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
MAX_LINKS = 128  # the SDK's default span limit: links beyond it are dropped
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER = trace.get_tracer("dataintel")
_enabled = False
_INSTRUMENTED: weakref.WeakSet[Any] = weakref.WeakSet()
T = TypeVar("T")


def enabled() -> bool:
    """Whether spans are recorded (checked before any tracing work on hot paths)."""
    return _enabled


def configure(
    endpoint: str | None, service_name: str = "dataintel", role: str | None = None
) -> Any:
    """Export spans to the OTLP/HTTP ``endpoint``; None: tracing stays off. Returns the
    tracer provider (call ``shutdown()`` on it to flush) or None."""
    global _enabled, _TRACER
    if not endpoint:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise RuntimeError(
            "otel_traces_endpoint is set but the OpenTelemetry SDK is not installed: "
            "pip install 'dataintel[tracing]'"
        ) from exc

    attributes: dict[str, str] = {"service.name": service_name}
    if role is not None:
        attributes["dataintel.role"] = role
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    _TRACER = provider.get_tracer("dataintel")
    _enabled = True
    return provider


def disable() -> None:
    """Back to the default (tests, shutdown)."""
    global _enabled, _TRACER
    _enabled = False
    _TRACER = trace.get_tracer("dataintel")


def tracer() -> trace.Tracer:
    return _TRACER


class _HeaderGetter(Getter[Mapping[str, str]]):
    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if value is not None else None

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


def extract(headers: Mapping[str, str]) -> otel_context.Context:
    """The caller's context from W3C trace-context headers (empty when absent)."""
    return _PROPAGATOR.extract(headers, getter=_GETTER)


def current_traceparent() -> str | None:
    """The current span's ``traceparent`` (to carry it through the event log), or None."""
    if not _enabled:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, for log lines; None outside one."""
    if not _enabled:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@contextmanager
def span(name: str, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any) -> Iterator[Span]:
    """A span around the block (a non-recording one when tracing is off); an exception
    marks it as an error and propagates."""
    with _TRACER.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


@contextmanager
def batch_span(name: str, traceparents: Iterable[str | None], **attributes: Any) -> Iterator[Span]:
    """A span over a batch of log entries: linked to the traces the entries came from, and
    with one child span in each of those traces (``<name>.part``), so each ingest trace
    shows where its events were applied."""
    if not _enabled:
        with span(name, **attributes) as current:
            yield current
        return
    parents: dict[str, otel_context.Context] = {}
    for parent in traceparents:
        if parent is not None and parent not in parents:
            parents[parent] = extract({TRACEPARENT: parent})
    links = [
        Link(trace.get_current_span(ctx).get_span_context())
        for ctx in list(parents.values())[:MAX_LINKS]
    ]
    with _TRACER.start_as_current_span(name, attributes=attributes, links=links) as batch:
        parts = [
            _TRACER.start_span(f"{name}.part", context=ctx, links=[Link(batch.get_span_context())])
            for ctx in parents.values()
        ]
        try:
            yield batch
        except BaseException as exc:
            for part in parts:
                part.set_status(Status(StatusCode.ERROR, str(exc)))
            raise
        finally:
            for part in parts:
                part.end()


def instrument_engine(engine: Any) -> None:
    """A CLIENT span per SQL statement of a SQLAlchemy engine (the metadata store)."""
    if not _enabled or engine in _INSTRUMENTED:
        return
    _INSTRUMENTED.add(engine)
    from sqlalchemy import event

    system = engine.dialect.name

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn: Any, cursor: Any, statement: str, *_: Any) -> None:  # noqa: ARG001
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        current = _TRACER.start_span(
            f"metadata.{verb.lower()}",
            kind=SpanKind.CLIENT,
            attributes={"db.system": system, "db.statement": statement[:1000]},
        )
        conn.info.setdefault("dataintel_spans", []).append(current)

    @event.listens_for(engine, "after_cursor_execute")
    def _end(conn: Any, *_: Any) -> None:
        spans = conn.info.get("dataintel_spans")
        if spans:
            spans.pop().end()

    @event.listens_for(engine, "handle_error")
    def _error(context: Any) -> None:
        spans = context.connection.info.get("dataintel_spans") if context.connection else None
        if spans:
            failed = spans.pop()
            failed.set_status(Status(StatusCode.ERROR, str(context.original_exception)[:200]))
            failed.end()


def traced(port: T, kind: str, system: str | None = None) -> T:
    """``port`` with a CLIENT span (``<kind>.<method>``) around each public method call,
    sync or async; returned unchanged when tracing is off."""
    if not _enabled:
        return port
    return _TracedProxy(port, kind, system or kind)  # type: ignore[return-value]


class _TracedProxy:
    """Delegates every attribute to the port; methods are wrapped in spans (cached)."""

    def __init__(self, port: Any, kind: str, system: str) -> None:
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_system", system)
        object.__setattr__(self, "_wrapped", {})

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._port, name)
        if name.startswith("_") or not callable(value):
            return value
        cache: dict[str, Any] = self._wrapped
        found = cache.get(name)
        if found is None:
            found = cache[name] = _wrap(value, f"{self._kind}.{name}", self._system)
        return found

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._port, name, value)

    def __repr__(self) -> str:
        return f"traced({self._port!r})"


def _wrap(method: Any, name: str, system: str) -> Any:
    attributes = {"db.system": system}
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with _TRACER.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
                return await method(*args, **kwargs)

        return run_async

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _TRACER.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
            return method(*args, **kwargs)

    return run


class ServerSpan:
    """The SERVER span of one HTTP request (the request middleware's), current from its
    start until ``close``; the caller's ``traceparent`` header is its parent."""

    def __init__(self, scope: Mapping[str, Any]) -> None:
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name in (b"traceparent", b"tracestate")
        }
        method = self.method = str(scope.get("method", "GET"))
        self.span = _TRACER.start_span(
            method,
            context=extract(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope.get("path", "")},
        )
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def finish(self, route: str, status: int, request_id: str) -> None:
        """Name the span by its route template and record the outcome (before the access
        line, which is written inside the span and so carries its ids)."""
        self.span.update_name(f"{self.method} {route}")
        self.span.set_attribute("http.route", route)
        self.span.set_attribute("http.response.status_code", status)
        self.span.set_attribute("dataintel.request_id", request_id)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))

    def close(self) -> None:
        otel_context.detach(self._token)
        self.span.end()


def server_span(scope: Mapping[str, Any]) -> ServerSpan:
    return ServerSpan(scope)
