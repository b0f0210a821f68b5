"""The OpenAPI document tells the truth about errors: problem+json for every 4xx/5xx.

FastAPI documents only the success response and a 422 with its own (unused) body shape.
``install(app)`` post-processes the generated document once per route set, so every router,
whoever wrote it, declares the RFC 9457 problem responses it can actually return:

- every authenticated operation (all but /health/* and /metrics): 401, 403, 404, 429 and 503;
- operations with parameters or a body: 422; with a body: 400 and 413;
- operations that change state (POST, PUT, PATCH, DELETE): 409.

A status a route already declares keeps its description; its content becomes problem+json.
Authenticated operations also declare their security: a bearer token (API key or JWT) or the
X-API-Key header.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from dataintel.api.problems import MEDIA_TYPE

MUTATING = frozenset({"post", "put", "patch", "delete"})
METHODS = MUTATING | {"get", "head", "options", "trace"}

_FIELD_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["loc", "pointer", "msg", "type"],
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "pointer": {"type": "string", "description": "JSON pointer to the field, e.g. /body/id"},
        "msg": {"type": "string"},
        "type": {"type": "string"},
    },
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details. Extra members depend on the problem type.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "URI identifying the problem type."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request path."},
        "request_id": {"type": "string", "description": "Also in the X-Request-ID header."},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ProblemFieldError"}},
    },
    "additionalProperties": True,
}

DESCRIPTIONS: dict[int, str] = {
    400: "The request could not be read.",
    401: "Missing, malformed, expired or revoked credentials.",
    403: "The credential lacks the permission this operation needs.",
    404: "Not found, or in a project the credential cannot see.",
    409: "Conflicts with the current state (duplicate, in use, concurrent change).",
    413: "The request body exceeds the configured limit (`limit_bytes`).",
    422: "Validation failed; `errors` names each field.",
    429: "Rate limit exceeded for this credential; see Retry-After.",
    503: "A backend (metadata store, rate-limit storage) is unavailable; retry.",
}

HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer realm."}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
}


SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <API key or JWT>`.",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


PUBLIC_PREFIXES = ("/health/", "/metrics")


def authenticated(path: str) -> bool:
    return not path.startswith(PUBLIC_PREFIXES)


def problem_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The problem statuses ``method path`` can return (see the module docstring)."""
    has_body = "requestBody" in operation
    statuses: set[int] = set()
    if authenticated(path):
        statuses |= {401, 403, 404, 429, 503}
    if has_body or operation.get("parameters"):
        statuses.add(422)
    if has_body:
        statuses |= {400, 413}
    if method in MUTATING and authenticated(path):
        statuses.add(409)
    return statuses


def _problem_response(status: int, declared: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": (declared or {}).get("description") or DESCRIPTIONS.get(status, "Error"),
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    headers = {**HEADERS.get(status, {}), **(declared or {}).get("headers", {})}
    if headers:
        response["headers"] = headers
    return response


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare problem+json responses in an OpenAPI document, in place (idempotent)."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            if authenticated(path):
                operation.setdefault("security", SECURITY)
            responses: dict[str, Any] = operation.setdefault("responses", {})
            declared_errors = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            for status in sorted(problem_statuses(path, method, operation) | declared_errors):
                responses[str(status)] = _problem_response(status, responses.get(str(status)))
    schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    components = schema["components"].setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    components["ProblemFieldError"] = _FIELD_ERROR
    _drop_unused(components, schema, ("HTTPValidationError", "ValidationError"))
    return schema


def _drop_unused(
    components: dict[str, Any], schema: dict[str, Any], names: tuple[str, ...]
) -> None:
    """FastAPI's own 422 body models, once no response refers to them any more."""
    for name in names:
        if name not in components:
            continue
        ref = f'"#/components/schemas/{name}"'
        rest = {k: v for k, v in components.items() if k != name}
        if ref not in json.dumps(schema.get("paths", {})) and ref not in json.dumps(rest):
            del components[name]


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with problem responses declared."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return document_problems(generate())

    app.openapi = openapi  # type: ignore[method-assign]
