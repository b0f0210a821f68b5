"""Turn request credentials into a Principal: an API key or a JWT bearer token."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from dataintel.auth import repository
from dataintel.auth.jwt_tokens import principal_from_jwt
from dataintel.auth.permissions import Role
from dataintel.auth.principal import Principal
from dataintel.auth.tokens import KEY_PREFIX, secret_matches, split_key
from dataintel.errors import Unauthorized
from dataintel.settings import Settings
from dataintel.storage.metadata.types import utcnow


def credential_from_headers(headers: Mapping[str, str]) -> str:
    """The presented credential: ``Authorization: Bearer …`` or ``X-API-Key``."""
    api_key = headers.get("x-api-key")
    if api_key:
        return api_key.strip()
    auth = headers.get("authorization")
    if not auth:
        raise Unauthorized("missing credentials: send 'Authorization: Bearer <key or JWT>'")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("the Authorization header must read 'Bearer <key or JWT>'")
    return value.strip()


def authenticate(headers: Mapping[str, str], session: Session, settings: Settings) -> Principal:
    credential = credential_from_headers(headers)
    if credential.startswith(KEY_PREFIX):
        return principal_from_api_key(credential, session)
    return principal_from_jwt(credential, settings)


def principal_from_api_key(presented: str, session: Session) -> Principal:
    parts = split_key(presented)
    row = repository.get_key(session, parts[0]) if parts else None
    # Compare even when the row is missing so timing does not reveal which ids exist.
    stored = row.secret_hash if row is not None else "0" * 64
    if parts is None or not secret_matches(parts[1], stored) or row is None:
        raise Unauthorized("invalid API key")
    if row.revoked_at is not None:
        raise Unauthorized("API key revoked")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthorized("API key expired")
    return Principal(
        subject=f"key:{row.id}",
        roles=frozenset(Role(r) for r in row.roles),
        projects=None if row.project_id is None else frozenset({row.project_id}),
        key_id=row.id,
        pipeline_id=row.pipeline_id,
    )
