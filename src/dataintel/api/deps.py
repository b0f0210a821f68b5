"""FastAPI dependencies: the request's session, the caller, and route permissions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from dataintel.api.audit import audited, record_request
from dataintel.api.state import AppState
from dataintel.auth.authenticate import authenticate_async
from dataintel.auth.permissions import Permission
from dataintel.auth.principal import Principal
from dataintel.errors import Forbidden, InvalidInput, NotFound
from dataintel.settings import Settings
from dataintel.storage.metadata.models import Project

PROJECT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.dataintel
    return state


def get_settings(request: Request) -> Settings:
    return app_state(request).settings


async def _session(request: Request) -> AsyncIterator[Session]:
    """One unit of work per request: committed when the endpoint returns, else rolled back.

    A session that never touched the database (an ingest request served from caches) costs
    no thread hop; one that did is committed in a worker thread, off the event loop."""
    session = app_state(request).sessions()
    try:
        yield session
        if audited(request):  # the act and its audit entry commit together (api/audit.py)
            await run_in_threadpool(_record_and_commit, request, session)
        elif session.in_transaction():
            await run_in_threadpool(session.commit)
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        raise
    finally:
        session.close()


def _record_and_commit(request: Request, session: Session) -> None:
    record_request(request, session)
    session.commit()


SessionDep = Annotated[Session, Depends(_session, scope="function")]


async def _principal(request: Request) -> Principal:
    """Authenticate and count the rate limit, once per request: a hot path that authorized
    the request and then declined it (e.g. an analytics cache miss) hands over its caller."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    state = app_state(request)
    principal = await authenticate_async(request.headers, state.sessions, state.settings)
    request.state.principal = principal
    if state.rate_limiter is not None:
        state.rate_limiter.hit(principal.rate_limit_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks ``permission`` (403)."""

    def dependency(principal: PrincipalDep) -> Principal:
        if not principal.can(permission):
            raise Forbidden(f"this credential lacks the '{permission}' permission")
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


@dataclass(frozen=True, slots=True)
class ProjectScope:
    principal: Principal
    project: Project
    session: Session

    @property
    def project_id(self) -> str:
        return self.project.id


def _scope(
    principal: Principal, session: Session, project_id: str, permission: Permission
) -> ProjectScope:
    project = session.get(Project, project_id) if principal.sees_project(project_id) else None
    if project is None:
        raise NotFound(f"project '{project_id}' not found")
    if not principal.can(permission):
        raise Forbidden(f"this credential lacks the '{permission}' permission")
    return ProjectScope(principal, project, session)


def project_scope(permission: Permission) -> Callable[..., ProjectScope]:
    """Project-scoped routes: 404 for a project the caller cannot see (whether or not it
    exists, so tenants learn nothing of each other), then 403 for a missing permission."""

    def dependency(
        principal: PrincipalDep,
        session: SessionDep,
        project_id: Annotated[str, Path(pattern=PROJECT_ID_PATTERN, max_length=64)],
    ) -> ProjectScope:
        return _scope(principal, session, project_id, permission)

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def credential_project(principal: Principal, project_id: str | None) -> str:
    """The project a /v1 call is about: the one named, else the credential's only project."""
    if project_id is not None:
        return project_id
    if principal.projects is None or len(principal.projects) != 1:
        raise InvalidInput.field(
            ["query", "project_id"],
            "required: this credential spans several projects (e.g. a global admin key), "
            "so name the project the call is about with ?project_id=<project id>",
            kind="missing",
        )
    (only,) = principal.projects
    return only


def credential_project_scope(permission: Permission) -> Callable[..., ProjectScope]:
    """For /v1/... routes: the project is the credential's own (a key scoped to one project),
    or the ``project_id`` query parameter (required for credentials that span projects)."""

    def dependency(
        principal: PrincipalDep,
        session: SessionDep,
        project_id: Annotated[
            str | None,
            Query(
                pattern=PROJECT_ID_PATTERN,
                max_length=64,
                description="Required when the credential spans several projects.",
            ),
        ] = None,
    ) -> ProjectScope:
        return _scope(principal, session, credential_project(principal, project_id), permission)

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def route_permission(dependency: Any) -> Permission | None:
    """The permission a dependency made by require()/project_scope() checks."""
    perm = getattr(dependency, "permission", None)
    return perm if isinstance(perm, Permission) else None
