"""RFC 9457 problem+json for every 4xx/5xx the service returns."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dataintel.errors import ServiceError

PROBLEM_BASE = "https://dataintel.dev/problems/"
MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("dataintel.errors")


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE


def problem(
    status: int,
    title: str,
    detail: str,
    slug: str,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        rid = getattr(request.state, "request_id", None)
        if rid:
            body["request_id"] = rid
    body.update({k: v for k, v in extra.items() if v is not None})
    return ProblemResponse(body, status_code=status, headers=headers)


def _loc_pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    return "/" + "/".join(str(p) for p in loc)


def validation_errors(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = list(err.get("loc", ()))
        out.append(
            {
                "loc": loc,
                "pointer": _loc_pointer(loc),
                "msg": str(err.get("msg", "invalid")),
                "type": str(err.get("type", "invalid")),
            }
        )
    return out


async def _service_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ServiceError)
    errors = getattr(exc, "errors", None) or None
    extra = {k: v for k, v in exc.extra.items() if k not in {"type", "title", "status"}}
    return problem(
        exc.status,
        exc.title,
        exc.detail,
        exc.type_slug,
        request,
        exc.headers,
        errors=errors,
        **extra,
    )


async def _request_validation(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(list(exc.errors()))
    fields = ", ".join(f"{e['pointer']}: {e['msg']}" for e in errors[:5])
    return problem(
        422, "Validation failed", fields or "invalid request", "validation", request, errors=errors
    )


async def _http_exception(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
    title = titles.get(exc.status_code, "HTTP error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    slug = title.lower().replace(" ", "-")
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, title, detail, slug, request, headers)


async def _unhandled(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("unhandled error", exc_info=exc, path=request.url.path)
    return problem(
        500,
        "Internal error",
        "an unexpected error occurred; see the server log",
        "internal",
        request,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unhandled)
