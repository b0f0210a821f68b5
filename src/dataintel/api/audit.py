"""Which requests the audit trail records by itself, and as what.

Every successful request that changes something through the management API — a POST, PUT,
PATCH or DELETE under ``/api/`` (projects, pipelines, features, settings, deployments,
keys, dead-letter replays), ``/v1/reports`` or ``/v1/jobs`` (manual runs) — appends one
entry to its project's chain
(``GLOBAL_CHAIN`` when it concerns none) in the request's own transaction
(``deps._session``), so the act and its entry commit together or not at all. The entry
names the route (``action`` = the endpoint's name), the path parameters (``target``), and
what the endpoint adds to ``request.state.audit`` (e.g. the id of a key it created). Request
bodies are not recorded. Ingest is not audited (it is traffic, counted in the stats).

Reads that hand data out (exports, report downloads) record themselves where they know
the result (storage/metadata/audit_repository.py ``record``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from dataintel.storage.metadata.audit_repository import GLOBAL_CHAIN, append

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUDITED_PREFIXES = ("/api/", "/v1/reports", "/v1/jobs")


def audited(request: Request) -> bool:
    if request.method not in MUTATING:
        return False
    path = getattr(request.scope.get("route"), "path", None)
    return isinstance(path, str) and path.startswith(AUDITED_PREFIXES)


def actor(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    return str(principal.subject) if principal is not None else "anonymous"


def annotate(request: Request, **detail: Any) -> None:
    """Add to what the audit entry of this request records (JSON values, no PII)."""
    extra: dict[str, Any] = getattr(request.state, "audit", {})
    request.state.audit = {**extra, **detail}


def annotate_project(request: Request, project_id: str) -> None:
    """The chain of a route whose project is not a path parameter."""
    request.state.audit_project = project_id


def record_request(request: Request, session: Session) -> None:
    """Append the entry of an audited request (see the module doc) to ``session``."""
    route = request.scope["route"]
    params = {k: str(v) for k, v in request.path_params.items()}
    project = params.pop("project_id", None) or getattr(request.state, "audit_project", None)
    target = ",".join(f"{k}={v}" for k, v in sorted(params.items())) or None
    detail = {"method": request.method, "route": route.path, **getattr(request.state, "audit", {})}
    append(session, project or GLOBAL_CHAIN, actor(request), route.name, target, detail)
