"""GET and POST /v1/analytics/conversion: a funnel over the project's events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from dataintel.analytics.funnel_schemas import FunnelQuery, FunnelRead
from dataintel.analytics.funnel_service import funnel_answer
from dataintel.analytics.funnels_spec import (
    FunnelEntity,
    FunnelMode,
)
from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.state import ANALYTICS
from dataintel.api.types import UtcTime
from dataintel.auth.permissions import Permission

router = APIRouter(tags=["analytics"])
AnalyticsScope = Annotated[
    ProjectScope, Depends(credential_project_scope(Permission.ANALYTICS_READ))
]
SUMMARY = "Conversion funnel (PostHog semantics; see docs/analytics-funnels.md)"


@router.get("/v1/analytics/conversion", summary=SUMMARY, response_model=FunnelRead)
def conversion(
    request: Request,
    scope: AnalyticsScope,
    step: Annotated[
        list[str],
        Query(
            min_length=2,
            max_length=12,
            description="Repeat per step, in order: `event` or `event[prop OP value,...]`.",
        ),
    ],
    from_: Annotated[
        UtcTime | None, Query(alias="from", description="Default: `to` - 30 days.")
    ] = None,
    to: Annotated[UtcTime | None, Query(description="Exclusive; default: now.")] = None,
    mode: FunnelMode = FunnelMode.ORDERED,
    window: Annotated[str, Query(max_length=16, description="From step 1: 30m, 12h, 14d.")] = "14d",
    step_window: Annotated[
        list[str] | None,
        Query(max_length=12, description="`k:duration`: step k within it of step k-1."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        Query(max_length=8, description="`event[filters]@a-b`: not between step a and b."),
    ] = None,
    breakdown: Annotated[str | None, Query(max_length=128)] = None,
    breakdown_limit: Annotated[int, Query(ge=1, le=100)] = 25,
    entity: FunnelEntity = FunnelEntity.USER,
) -> FunnelRead:
    query = FunnelQuery.model_validate(
        {
            "steps": step,
            "from": from_,
            "to": to,
            "mode": mode,
            "window": window,
            "step_windows": step_window or [],
            "exclude": exclude or [],
            "breakdown": breakdown,
            "breakdown_limit": breakdown_limit,
            "entity": entity,
        }
    )
    return _answer(request, scope, query, "query")


@router.post("/v1/analytics/conversion", summary=SUMMARY, response_model=FunnelRead)
def conversion_post(request: Request, scope: AnalyticsScope, body: FunnelQuery) -> FunnelRead:
    return _answer(request, scope, body, "body")


def _answer(request: Request, scope: ProjectScope, query: FunnelQuery, where: str) -> FunnelRead:
    return funnel_answer(app_state(request).port(ANALYTICS), scope.project_id, query, where)
