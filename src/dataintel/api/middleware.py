"""Pure-ASGI middleware: request id, body-size limit, access log and metrics in one pass."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dataintel import tracing
from dataintel.api.logging import REQUEST_ID, access
from dataintel.api.metrics import HttpMetrics
from dataintel.api.problems import MEDIA_TYPE, PROBLEM_BASE

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit. An HTTPException so
    FastAPI's body parsing re-raises it (it turns other errors into a 400) and the problem
    handler renders it; the middleware still catches it if it escapes the app."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")
        self.limit_bytes = limit


class RequestContextMiddleware:
    """Binds X-Request-ID (accepted when well-formed, else generated) to the logs, echoes it,
    rejects bodies over ``max_body_bytes`` with 413, and records metrics per route template."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        # Labelled metric children by (method, route, status): prometheus' labels() lookup
        # costs more than the observation itself.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        token = REQUEST_ID.set(rid)
        start = time.perf_counter()
        status = {"code": 500, "started": False}
        rid_header = (b"x-request-id", rid.encode())

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        server_span = tracing.server_span(scope) if tracing.enabled() else None
        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body:
                await self._too_large(send_wrapper, rid)
                return
            await self.app(scope, self._limited(receive), send_wrapper)
        except BodyTooLarge:
            if not status["started"]:
                await self._too_large(send_wrapper, rid)
        finally:
            if server_span is not None:  # ends the span, after the access line below
                server_span.finish(_route_template(scope), int(status["code"]), rid)
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            self._observe(scope["method"], route, int(status["code"]), elapsed)
            access(
                method=scope["method"],
                path=scope["path"],
                route=route,
                status=status["code"],
                duration_ms=round(elapsed * 1000, 3),
                principal=_principal(scope),
            )
            REQUEST_ID.reset(token)
            if server_span is not None:
                server_span.close()

    def _observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = self._children[key] = (
                self.metrics.requests.labels(*labels),
                self.metrics.latency.labels(*labels),
            )
        children[0].inc()
        children[1].observe(seconds)

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        return wrapped

    async def _too_large(self, send: Send, rid: str) -> None:
        body = orjson.dumps(
            {
                "type": PROBLEM_BASE + "payload-too-large",
                "title": "Payload too large",
                "status": 413,
                "detail": f"request body exceeds the limit of {self.max_body} bytes",
                "limit_bytes": self.max_body,
                "request_id": rid,
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


def _principal(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    principal = state.get("principal")
    return getattr(principal, "subject", None)
