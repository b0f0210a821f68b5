"""JWT bearer verification: algorithm pinned by configuration, exp/iss/aud required."""

from __future__ import annotations

import json
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
    projects = _projects(claims.get("projects"))
    return Principal(
        subject=f"jwt:{claims['sub']}",
        roles=_roles(claims.get("roles")),
        projects=projects,
        rate_limit_key=_rate_limit_key(claims, projects),
    )


def _rate_limit_key(claims: dict[str, Any], projects: frozenset[str] | None) -> str:
    """One bucket per issuer + project scope + subject, JSON-encoded so no choice of ids can
    make two different triples read the same (a ``sub`` is unique only within its tenant)."""
    scope = "*" if projects is None else sorted(projects)
    return "jwt:" + json.dumps([claims["iss"], scope, str(claims["sub"])], separators=(",", ":"))


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
