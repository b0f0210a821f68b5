"""Turn request credentials into a Principal: an API key or a JWT bearer token."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from dataintel.auth import repository
from dataintel.auth.jwt_tokens import principal_from_jwt
from dataintel.auth.key_cache import KEY_CACHE
from dataintel.auth.permissions import Role
from dataintel.auth.principal import Principal
from dataintel.auth.tokens import KEY_PREFIX, secret_matches, split_key
from dataintel.errors import Unauthorized
from dataintel.settings import Settings
from dataintel.storage.metadata.outages import METADATA_OUTAGES
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


async def authenticate_async(
    headers: Mapping[str, str], sessions: sessionmaker[Session], settings: Settings
) -> Principal:
    """The caller's Principal without blocking the event loop: a key verified moments ago
    comes from the cache, a JWT is checked in place (CPU only), a key lookup runs in a
    thread with its own short session (no pooled connection is held across the request)."""
    credential = credential_from_headers(headers)
    if credential.startswith(KEY_PREFIX):
        return await api_key_principal_async(credential, sessions)
    return principal_from_jwt(credential, settings)


async def api_key_principal_async(presented: str, sessions: sessionmaker[Session]) -> Principal:
    cached = KEY_CACHE.get(presented)
    if cached is not None:
        return cached
    async with KEY_CACHE.single_flight(presented):
        cached = KEY_CACHE.get(presented)  # another request may have just looked it up
        if cached is not None:
            return cached
        try:
            return await run_in_threadpool(_lookup, presented, sessions)
        except Unauthorized:
            KEY_CACHE.forget(presented)
            raise
        except METADATA_OUTAGES:
            # The metadata store is away: a key this process verified before still works
            # (serving continues through a metadata outage, ADR 0017); any other, the 503.
            stale = KEY_CACHE.get_stale(presented)
            if stale is None:
                raise
            return stale


def _lookup(presented: str, sessions: sessionmaker[Session]) -> Principal:
    with sessions() as session:
        return principal_from_api_key(presented, session)


def principal_from_api_key(presented: str, session: Session) -> Principal:
    cached = KEY_CACHE.get(presented)
    if cached is not None:
        return cached
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
    principal = Principal(
        subject=f"key:{row.id}",
        roles=frozenset(Role(r) for r in row.roles),
        projects=None if row.project_id is None else frozenset({row.project_id}),
        key_id=row.id,
        pipeline_id=row.pipeline_id,
    )
    KEY_CACHE.put(presented, principal, row.expires_at)
    return principal
