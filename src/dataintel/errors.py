"""The one error tree of the service. Each error knows its HTTP status and problem type.

Domain code raises these; ``api.problems`` renders them as RFC 9457 problem+json.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    type_slug: ClassVar[str] = "internal"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}


class BadRequest(ServiceError):
    status = 400
    title = "Bad request"
    type_slug = "bad-request"


class Unauthorized(ServiceError):
    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["WWW-Authenticate"] = 'Bearer realm="dataintel"'


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFound(ServiceError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class PayloadTooLarge(ServiceError):
    status = 413
    title = "Payload too large"
    type_slug = "payload-too-large"


class InvalidInput(ServiceError):
    """A payload that parses but breaks a rule; ``errors`` lists each field and reason."""

    status = 422
    title = "Validation failed"
    type_slug = "validation"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []

    @classmethod
    def field(cls, loc: list[str | int], msg: str, kind: str = "invalid") -> InvalidInput:
        pointer = "/" + "/".join(str(p) for p in loc)
        return cls(
            f"{pointer}: {msg}", [{"loc": loc, "pointer": pointer, "msg": msg, "type": kind}]
        )


class RateLimited(ServiceError):
    status = 429
    title = "Too many requests"
    type_slug = "rate-limited"

    def __init__(self, detail: str, retry_after: int, limit: str | None = None) -> None:
        """``limit`` names which limit refused (a member of the problem when set)."""
        super().__init__(detail, retry_after=retry_after, limit=limit)
        self.headers["Retry-After"] = str(retry_after)


class Unavailable(ServiceError):
    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"
