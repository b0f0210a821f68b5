"""GET /v1/quality/alerts (filtered, by cursor), GET /v1/quality/alerts/{id}, and
POST …/{id}/acknowledge and …/{id}/resolve (audited like every write).

The project is the credential's own, or ``?project_id=`` for a credential that spans
several. Reading needs ``config:read``; acknowledging and resolving ``config:write``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from dataintel.api.audit import annotate, annotate_project
from dataintel.api.deps import ProjectScope, credential_project_scope
from dataintel.api.json_body import StrictJSONRoute
from dataintel.api.types import INT32_MAX, UtcTime
from dataintel.auth.permissions import Permission
from dataintel.errors import NotFound
from dataintel.quality import alert_repository as repo
from dataintel.quality import alerts
from dataintel.quality.alert_schemas import AlertPage, AlertRead, AlertResolve, Status
from dataintel.quality.alerts import Kind, Severity
from dataintel.storage.metadata.monitoring_models import QualityAlert

router = APIRouter(prefix="/v1/quality/alerts", tags=["quality"], route_class=StrictJSONRoute)
ReadScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.CONFIG_READ))]
WriteScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.CONFIG_WRITE))]
AlertId = Annotated[int, Path(ge=1, le=INT32_MAX)]


def _read(alert: QualityAlert) -> AlertRead:
    return AlertRead.model_validate(alerts.as_json(alert))


def _found(scope: ProjectScope, alert_id: int) -> QualityAlert:
    alert = repo.get(scope.session, scope.project_id, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert


@router.get("", summary="The project's alerts, newest first")
def list_alerts(
    scope: ReadScope,
    status: Annotated[Status | None, Query(description="Only this status.")] = None,
    kind: Annotated[Kind | None, Query(description="Only this kind.")] = None,
    severity: Annotated[Severity | None, Query(description="Only this severity.")] = None,
    since: Annotated[UtcTime | None, Query(description="Last seen at or after.")] = None,
    after: Annotated[
        int | None, Query(ge=1, le=INT32_MAX, description="The `next_after` of the last page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertPage:
    f = repo.AlertFilter(scope.project_id, status, kind, severity, since, after, limit)
    found = repo.page(scope.session, f)
    more = len(found) > limit
    shown = [_read(a) for a in found[:limit]]
    return AlertPage(alerts=shown, next_after=shown[-1].id if more else None)


@router.get("/{alert_id}", summary="One alert")
def get_alert(scope: ReadScope, alert_id: AlertId) -> AlertRead:
    return _read(_found(scope, alert_id))


@router.post("/{alert_id}/acknowledge", summary="Acknowledge an open alert (someone is on it)")
def acknowledge_alert(request: Request, scope: WriteScope, alert_id: AlertId) -> AlertRead:
    alert = alerts.acknowledge(scope.session, _found(scope, alert_id), scope.principal.subject)
    annotate_project(request, scope.project_id)
    annotate(request, alert_id=alert_id)
    return _read(alert)


@router.post("/{alert_id}/resolve", summary="Resolve an alert by hand, with the reason")
def resolve_alert(
    request: Request, data: AlertResolve, scope: WriteScope, alert_id: AlertId
) -> AlertRead:
    found = _found(scope, alert_id)
    alert = alerts.resolve(scope.session, found, data.reason, scope.principal.subject)
    annotate_project(request, scope.project_id)
    annotate(request, alert_id=alert_id, reason=data.reason)
    return _read(alert)
