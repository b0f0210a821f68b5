"""/api/v1/api-keys: create, list, revoke; /api/v1/me: the calling credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status

from dataintel.api.audit import annotate, annotate_project
from dataintel.api.deps import PROJECT_ID_PATTERN, SessionDep, require
from dataintel.api.json_body import StrictJSONRoute
from dataintel.api.sensitive import SENSITIVE
from dataintel.auth.permissions import Permission
from dataintel.auth.principal import Principal
from dataintel.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, CallerRead
from dataintel.auth.service import ApiKeyService

router = APIRouter(
    prefix="/api/v1/api-keys",
    route_class=StrictJSONRoute,
    tags=["api-keys"],
    dependencies=[SENSITIVE],
)
KEY_ID_PATTERN = r"^[A-Za-z0-9]{1,40}$"
me_router = APIRouter(prefix="/api/v1/me", route_class=StrictJSONRoute, tags=["api-keys"])
KeysAdmin = Annotated[Principal, Depends(require(Permission.KEYS_MANAGE))]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key (shown once)")
def create_key(
    request: Request, data: ApiKeyCreate, principal: KeysAdmin, session: SessionDep
) -> ApiKeyCreated:
    created = ApiKeyService(session).create(data, principal)
    _audit(request, created)
    return created


@router.get("", summary="List API keys visible to the caller")
def list_keys(
    principal: KeysAdmin,
    session: SessionDep,
    project_id: Annotated[str | None, Query(pattern=PROJECT_ID_PATTERN, max_length=64)] = None,
    include_revoked: bool = False,
) -> list[ApiKeyRead]:
    return ApiKeyService(session).list(principal, project_id, include_revoked)


@router.delete("/{key_id}", summary="Revoke an API key")
def revoke_key(
    request: Request,
    key_id: Annotated[str, Path(pattern=KEY_ID_PATTERN, max_length=40)],
    principal: KeysAdmin,
    session: SessionDep,
) -> ApiKeyRead:
    revoked = ApiKeyService(session).revoke(key_id, principal)
    _audit(request, revoked)
    return revoked


def _audit(request: Request, key: ApiKeyRead) -> None:
    """The key's project chain, its id and roles (never the secret)."""
    if key.project_id is not None:
        annotate_project(request, key.project_id)
    annotate(
        request,
        key_id=key.id,
        roles=sorted(r.value for r in key.roles),
        pipeline_id=key.pipeline_id,
    )


@me_router.get("", summary="The calling credential: its roles, permissions and projects")
def me(principal: Annotated[Principal, Depends(require(Permission.PROJECT_READ))]) -> CallerRead:
    """What a client (the dashboard) may offer this caller; every route still checks."""
    return CallerRead(
        subject=principal.subject,
        roles=sorted(principal.roles),
        permissions=[p for p in Permission if principal.can(p)],
        projects=None if principal.projects is None else sorted(principal.projects),
    )
