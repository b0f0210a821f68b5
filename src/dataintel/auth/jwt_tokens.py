"""JWT bearer verification: algorithm pinned by configuration, exp/iss/aud required."""

from __future__ import annotations

from typing import Any

import jwt

from dataintel.auth.permissions import Role
from dataintel.auth.principal import Principal
from dataintel.errors import Unauthorized
from dataintel.settings import Settings


def principal_from_jwt(token: str, settings: Settings) -> Principal:
    key = settings.jwt_verification_key
    if key is None:
        raise Unauthorized("JWT authentication is not configured on this server")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    return Principal(
        subject=f"jwt:{claims['sub']}",
        roles=_roles(claims.get("roles")),
        projects=_projects(claims.get("projects")),
    )


def _roles(raw: Any) -> frozenset[Role]:
    if not isinstance(raw, list) or not raw:
        raise Unauthorized("token claim 'roles' must be a non-empty list")
    try:
        return frozenset(Role(r) for r in raw)
    except ValueError as exc:
        raise Unauthorized(f"token claim 'roles' has an unknown role: {exc}") from exc


def _projects(raw: Any) -> frozenset[str] | None:
    if raw == "*" or raw == ["*"]:
        return None
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise Unauthorized("token claim 'projects' must be a list of project ids or '*'")
    return frozenset(raw)
