"""GET /v1/analytics/revenue: revenue attributed to interventions, and the holdout's
incremental revenue (docs/analytics-revenue.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from dataintel.analytics.answers import HorizonWindow, cache_first, horizon_answer
from dataintel.analytics.attribution import RevenueService
from dataintel.analytics.attribution_params import revenue_params
from dataintel.analytics.attribution_sql import Model
from dataintel.analytics.revenue_schemas import RevenueRead
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
Duration = Annotated[str | None, Query(max_length=16, description="30s … 365d, e.g. 7d.")]


@router.get(
    "/v1/analytics/revenue",
    response_model=RevenueRead,
    summary="Revenue attributed to interventions, and incremental revenue from the holdout",
)
@hot_path(cache_first("revenue"))
async def revenue(
    request: Request,
    scope: AnalyticsScope,
    start: Annotated[
        UtcTime | None,
        Query(alias="from", description="Conversions at or after (default: to - 30 d)."),
    ] = None,
    end: Annotated[
        UtcTime | None,
        Query(alias="to", description="Conversions before (default: the current minute)."),
    ] = None,
    model: Annotated[Model, Query(description="Attribution model.")] = Model.LAST_TOUCH,
    window: Annotated[
        str | None,
        Query(
            max_length=16,
            description="Attribution window: touches this long before a conversion may get "
            "credit (default: the project's attribution_window).",
        ),
    ] = None,
    half_life: Annotated[
        str | None,
        Query(
            max_length=16,
            description="time_decay only: a touch this much older gets half the weight "
            "(default: max(window / 4, 1d)).",
        ),
    ] = None,
    horizon: Annotated[
        str | None,
        Query(
            max_length=16,
            description="Holdout comparison: a cart counts as recovered by an order this long "
            "after its assignment (default: the project's outcome_horizon).",
        ),
    ] = None,
    currency: Annotated[
        str | None, Query(min_length=1, max_length=16, description="Only orders in it.")
    ] = None,
) -> Response:
    state = app_state(request)
    config = await state.port(CONFIGS).aget(scope.project_id)
    settings = config.snapshot.analytics
    params = revenue_params(
        settings,
        start=start,
        end=end,
        model=model,
        window=window,
        half_life=half_life,
        horizon=horizon,
        currency=currency,
    )
    service = RevenueService(state.port(ANALYTICS))
    span = HorizonWindow(params.range.end_us, params.horizon_us, params.now_us)
    return await horizon_answer(
        request,
        scope.project_id,
        "revenue",
        config.version,
        span,
        lambda: service.revenue(scope.project_id, settings, params),
    )
