"""GET /v1/analytics/performance: model performance per model_version, predictions joined to
their outcomes (docs/analytics-revenue.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from dataintel.analytics.answers import HorizonWindow, cache_first, horizon_answer
from dataintel.analytics.performance import PerformanceService
from dataintel.analytics.performance_params import performance_params
from dataintel.analytics.performance_schemas import BinStrategy, Interval, PerformanceRead
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


@router.get(
    "/v1/analytics/performance",
    response_model=PerformanceRead,
    summary="Model performance per model_version: AUCs, Brier, log loss, calibration, top k %",
)
@hot_path(cache_first("performance"))
async def performance(
    request: Request,
    scope: AnalyticsScope,
    start: Annotated[
        UtcTime | None,
        Query(alias="from", description="Predictions at or after (default: to - 30 d)."),
    ] = None,
    end: Annotated[
        UtcTime | None,
        Query(alias="to", description="Predictions before (default: the current minute)."),
    ] = None,
    interval: Annotated[Interval, Query(description="Series step (UTC).")] = Interval.DAY,
    horizon: Annotated[
        str | None,
        Query(
            max_length=16,
            description="Outcome: the cart purchased within this after the prediction "
            "(default: the project's outcome_horizon).",
        ),
    ] = None,
    model_version: Annotated[
        list[str] | None, Query(max_length=100, description="Only these versions (repeat).")
    ] = None,
    bins: Annotated[int, Query(ge=2, le=100, description="Calibration bins.")] = 10,
    strategy: Annotated[BinStrategy, Query(description="Calibration bin edges.")] = (
        BinStrategy.UNIFORM
    ),
    top: Annotated[
        list[float] | None,
        Query(max_length=20, description="Top k % for precision / recall / lift (repeat)."),
    ] = None,
) -> Response:
    state = app_state(request)
    config = await state.port(CONFIGS).aget(scope.project_id)
    settings = config.snapshot.analytics
    params = performance_params(
        settings, start, end, interval, horizon, model_version, bins, strategy, top
    )
    service = PerformanceService(state.port(ANALYTICS))
    span = HorizonWindow(params.range.end_us, params.horizon_us, params.now_us)
    return await horizon_answer(
        request,
        scope.project_id,
        "performance",
        config.version,
        span,
        lambda: service.performance(scope.project_id, settings, params),
    )
