"""GET /v1/analytics/overview (the other analyses: funnel*, attribution*, performance*).

Every route is scoped to the caller's project (``credential_project_scope``) and reads the
deployed analytics settings; answers are cached by request and store watermark, and a
repeated GET is answered by the route's fast path (analytics/answers.py; ``X-Cache:
hit|miss``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from dataintel.analytics.answers import cache_first, cached_response, query_text
from dataintel.analytics.cache import Fresh, RequestKey, fresh
from dataintel.analytics.params import AnalyticsParams, analytics_params
from dataintel.analytics.schemas import OverviewRead
from dataintel.analytics.service import AnalyticsService
from dataintel.analytics.settings import deployed_settings
from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.fast_scope import HotRoute, hot_path
from dataintel.api.state import ANALYTICS
from dataintel.auth.permissions import Permission
from dataintel.config.deployments.active import CONFIGS
from dataintel.errors import InvalidInput

router = APIRouter(tags=["analytics"], route_class=HotRoute)
AnalystScope = Annotated[ProjectScope, Depends(credential_project_scope(Permission.ANALYTICS_READ))]
Params = Annotated[AnalyticsParams, Depends(analytics_params)]


@router.get(
    "/v1/analytics/overview",
    summary="Events, users, carts created / abandoned / recovered, revenue, interventions: "
    "totals and a time series, beside the previous period",
    response_model=OverviewRead,
    responses={200: {"headers": {"X-Cache": {"description": "hit or miss"}}}},
)
@hot_path(cache_first("overview"))
def overview(request: Request, scope: AnalystScope, params: Params) -> Response:
    if params.breakdown is not None:
        raise InvalidInput.field(
            ["query", "breakdown"], "the overview has no breakdown (filter instead)"
        )
    state = app_state(request)
    deployed = deployed_settings(state.port(CONFIGS), scope.project_id)
    key = RequestKey(scope.project_id, "overview", query_text(request), deployed.version)

    def answer() -> Fresh:
        model = AnalyticsService(state.port(ANALYTICS)).overview(scope.project_id, params, deployed)
        now = params.now or params.as_of
        return fresh(model, now, reads_clock=params.end >= now)

    return cached_response(state, key, answer)
