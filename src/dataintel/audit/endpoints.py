"""GET /v1/audit (entries, filtered, by cursor) and GET /v1/audit/verify (re-check the hash
chain): a project's chain, or with ``/global`` the chain of what concerns no project
(global credentials only). Compliance officers and admins (``audit:read``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from dataintel.api.deps import ProjectScope, SessionDep, credential_project_scope, require
from dataintel.api.types import UtcTime
from dataintel.audit.schemas import AuditPage, AuditVerification
from dataintel.audit.service import AuditService
from dataintel.auth.permissions import Permission
from dataintel.auth.principal import Principal
from dataintel.errors import Forbidden
from dataintel.storage.metadata.audit_repository import GLOBAL_CHAIN, EntryFilter

router = APIRouter(tags=["audit"])
AuditScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.AUDIT_READ))]
Auditor = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
Action = Annotated[str | None, Query(max_length=100, description="Only this action.")]
Actor = Annotated[str | None, Query(max_length=200, description="Only this actor.")]
Start = Annotated[UtcTime | None, Query(alias="from", description="At or after.")]
End = Annotated[UtcTime | None, Query(alias="to", description="Before.")]
After = Annotated[
    int | None, Query(ge=0, le=2**62, description="The `next_after` of the previous page.")
]
Limit = Annotated[int, Query(ge=1, le=1000)]


@dataclass(frozen=True, slots=True)
class Page:
    """The filters and page of a trail request (the chain comes from the route)."""

    action: str | None
    actor: str | None
    start: datetime | None
    end: datetime | None
    after: int | None
    limit: int

    def filter(self, chain: str) -> EntryFilter:
        return EntryFilter(chain, self.action, self.actor, self.start, self.end, self.after)


def page(
    action: Action = None,
    actor: Actor = None,
    start: Start = None,
    end: End = None,
    after: After = None,
    limit: Limit = 100,
) -> Page:
    return Page(action, actor, start, end, after, limit)


PageDep = Annotated[Page, Depends(page)]


@router.get("/v1/audit", response_model=AuditPage, summary="The project's audit trail")
def project_trail(scope: AuditScope, paging: PageDep) -> AuditPage:
    return AuditService(scope.session).page(paging.filter(scope.project_id), paging.limit)


@router.get(
    "/v1/audit/verify",
    response_model=AuditVerification,
    summary="Re-check the project's audit chain: every hash, every link, the head",
)
def project_verify(scope: AuditScope) -> AuditVerification:
    return AuditService(scope.session).verify(scope.project_id)


@router.get(
    "/v1/audit/global",
    response_model=AuditPage,
    summary="The audit trail of what concerns no project (global credentials only)",
)
def global_trail(principal: Auditor, session: SessionDep, paging: PageDep) -> AuditPage:
    _global_only(principal)
    return AuditService(session).page(paging.filter(GLOBAL_CHAIN), paging.limit)


@router.get(
    "/v1/audit/global/verify",
    response_model=AuditVerification,
    summary="Re-check the global audit chain (global credentials only)",
)
def global_verify(principal: Auditor, session: SessionDep) -> AuditVerification:
    _global_only(principal)
    return AuditService(session).verify(GLOBAL_CHAIN)


def _global_only(principal: Principal) -> None:
    if not principal.is_global:
        raise Forbidden("the global audit trail is for credentials not bound to a project")
