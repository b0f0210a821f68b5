"""RFC 9457 problem+json for every 4xx/5xx the service returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from dataintel.errors import BadRequest, ServiceError, Unavailable
from dataintel.storage.breakers import BackendFailed, BackendUnavailable
from dataintel.storage.errors import InvalidQuery, StorageError

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


def _located(err: Any) -> tuple[list[Any], str]:
    """(loc, msg) of one pydantic/FastAPI error. A JSON syntax error is located at the body
    (FastAPI's loc holds a character offset there, which is no field)."""
    loc = list(err.get("loc", ()))
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "json_invalid":
        ctx = err.get("ctx") or {}
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = f": {ctx['error']}" if ctx.get("error") else ""
        return ["body"], f"{msg}{reason}{where}"
    return loc, msg


def validation_errors(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc, msg = _located(err)
        out.append(
            {
                "loc": loc,
                "pointer": _loc_pointer(loc),
                "msg": msg,
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


# The one place storage errors become HTTP: each kind maps to a ServiceError; the rest to 503.
STORAGE_ERRORS: dict[type[StorageError], type[ServiceError]] = {InvalidQuery: BadRequest}


def service_error_of(exc: StorageError) -> ServiceError:
    if isinstance(exc, BackendUnavailable):  # an open circuit breaker: say when to retry
        unavailable = Unavailable(str(exc), dependency=exc.dependency)
        unavailable.headers["Retry-After"] = str(exc.retry_after)
        return unavailable
    if isinstance(exc, BackendFailed):
        return Unavailable(str(exc), dependency=exc.dependency)
    for kind, error in STORAGE_ERRORS.items():
        if isinstance(exc, kind):
            return error(str(exc))
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int):  # e.g. a full ingest spool
        unavailable = Unavailable(str(exc))
        unavailable.headers["Retry-After"] = str(retry_after)
        return unavailable
    return Unavailable(f"a storage engine failed: {exc}")


async def _storage_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StorageError)
    return await _service_error(request, service_error_of(exc))


async def _request_validation(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(list(exc.errors()))
    fields = ", ".join(f"{e['pointer']}: {e['msg']}" for e in errors[:5])
    return problem(
        422, "Validation failed", fields or "invalid request", "validation", request, errors=errors
    )


_TITLES = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.capitalize()
    except ValueError:
        return "HTTP error"


async def _http_exception(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = _TITLES.get(exc.status_code) or _phrase(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else title
    if isinstance(exc.__cause__, UnicodeDecodeError):
        detail = "the request body is not valid UTF-8"
    slug = title.lower().replace(" ", "-")
    headers = dict(exc.headers) if exc.headers else None
    extra = {"limit_bytes": getattr(exc, "limit_bytes", None)}
    return problem(exc.status_code, title, detail, slug, request, headers, **extra)


async def _integrity_error(request: Request, exc: Exception) -> ProblemResponse:
    """A constraint the service's own checks did not catch: a concurrent write won the race."""
    log.warning("integrity error", error=str(exc.__cause__ or exc)[:500], path=request.url.path)
    return problem(
        409,
        "Conflict",
        "the change conflicts with existing data (probably a concurrent change); re-read and retry",
        "conflict",
        request,
    )


async def _database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
    """The metadata store did not answer (down, locked, pool exhausted): 503, retryable."""
    log.error("metadata store unavailable", error=str(exc)[:500], path=request.url.path)
    return problem(
        503,
        "Service unavailable",
        "the metadata store is unavailable; retry shortly",
        "unavailable",
        request,
        {"Retry-After": "1"},
    )


async def _unhandled(request: Request, exc: Exception) -> ProblemResponse:
    """Any other exception: logged with its traceback, answered without one. This handler
    runs outside the request middleware, so it binds and echoes the request id itself."""
    rid = getattr(request.state, "request_id", None)
    log.exception("unhandled error", exc_info=exc, path=request.url.path, request_id=rid)
    return problem(
        500,
        "Internal error",
        "an unexpected error occurred; see the server log",
        "internal",
        request,
        {"X-Request-ID": rid} if rid else None,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StorageError, _storage_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(sa_exc.IntegrityError, _integrity_error)
    for unavailable in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unhandled)
