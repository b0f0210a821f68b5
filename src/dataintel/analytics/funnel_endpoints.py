"""GET and POST /v1/analytics/conversion: a funnel over the project's events."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from dataintel.analytics.answers import cache_first, cached_response, query_text
from dataintel.analytics.cache import Fresh, RequestKey, fresh, minute_now
from dataintel.analytics.funnel_schemas import FunnelQuery, FunnelRead
from dataintel.analytics.funnel_service import funnel_answer
from dataintel.analytics.funnels_spec import (
    FunnelEntity,
    FunnelMode,
)
from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.fast_scope import HotRoute, hot_path
from dataintel.api.state import ANALYTICS
from dataintel.api.types import UtcTime
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS

router = APIRouter(tags=["analytics"], route_class=HotRoute)
AnalyticsScope = Annotated[
    ProjectScope, Depends(credential_project_scope(Permission.ANALYTICS_READ))
]
SUMMARY = "Conversion funnel (PostHog semantics; see docs/analytics-funnels.md)"


@router.get("/v1/analytics/conversion", summary=SUMMARY, response_model=FunnelRead)
@hot_path(cache_first("conversion"))
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
    to: Annotated[
        UtcTime | None, Query(description="Exclusive; default: now, rounded down to the minute.")
    ] = None,
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
) -> Response:
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
    return _answer(request, scope, query, "query", query_text(request))


@router.post("/v1/analytics/conversion", summary=SUMMARY, response_model=FunnelRead)
def conversion_post(request: Request, scope: AnalyticsScope, body: FunnelQuery) -> Response:
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return _answer(request, scope, body, "body", canonical.decode())


def _answer(
    request: Request, scope: ProjectScope, query: FunnelQuery, where: str, text: str
) -> Response:
    state = app_state(request)
    version = state.port(CONFIGS).get(scope.project_id).version
    key = RequestKey(scope.project_id, f"conversion:{where}", text, version)

    def compute() -> Fresh:
        now = minute_now()
        answer = funnel_answer(state.port(ANALYTICS), scope.project_id, query, where, now)
        return fresh(answer, now, reads_clock=answer.to >= now)

    return cached_response(state, key, compute)
