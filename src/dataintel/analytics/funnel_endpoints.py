"""GET and POST /v1/analytics/conversion: a funnel over the project's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from dataintel.analytics.funnel_schemas import FunnelGroupRead, FunnelQuery, FunnelRead, StepRead
from dataintel.analytics.funnels import FunnelGroup, run_funnel
from dataintel.analytics.funnels_spec import (
    FunnelEntity,
    FunnelMode,
    FunnelSpec,
    SpecError,
    parse_duration,
    parse_exclusion,
    parse_match,
    parse_step_window,
)
from dataintel.api.deps import ProjectScope, app_state, credential_project_scope
from dataintel.api.state import ANALYTICS
from dataintel.api.types import UtcTime
from dataintel.auth.permissions import Permission
from dataintel.errors import InvalidInput

router = APIRouter(tags=["analytics"])
AnalyticsScope = Annotated[
    ProjectScope, Depends(credential_project_scope(Permission.ANALYTICS_READ))
]
DEFAULT_RANGE = timedelta(days=30)
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
    spec = _spec(query, where)
    store = app_state(request).port(ANALYTICS)
    result = run_funnel(store, scope.project_id, spec)
    return FunnelRead(
        project_id=scope.project_id,
        **{"from": spec.start},
        to=spec.end,
        mode=spec.mode,
        entity=spec.entity,
        window_seconds=spec.window.total_seconds(),
        steps=_steps(result.total),
        excluded=result.total.excluded,
        breakdown=spec.breakdown,
        breakdown_values=(
            [
                FunnelGroupRead(value=g.value, excluded=g.excluded, steps=_steps(g))
                for g in result.breakdown
            ]
            if result.breakdown is not None
            else None
        ),
    )


def _spec(query: FunnelQuery, where: str) -> FunnelSpec:
    names = {"step": "steps", "step_window": "step_windows"} if where == "body" else {}
    try:
        end = query.to or datetime.now(UTC)
        start = query.from_ or end - DEFAULT_RANGE
        steps = tuple(parse_match(text, f"step/{i + 1}") for i, text in enumerate(query.steps))
        windows = dict(
            parse_step_window(text, f"step_window/{i + 1}")
            for i, text in enumerate(query.step_windows)
        )
        exclusions = tuple(
            parse_exclusion(text, len(steps), f"exclude/{i + 1}")
            for i, text in enumerate(query.exclude)
        )
        return FunnelSpec(
            steps=steps,
            start=start,
            end=end,
            mode=query.mode,
            window=parse_duration(query.window, "window"),
            step_windows=windows,
            exclusions=exclusions,
            breakdown=query.breakdown,
            breakdown_limit=query.breakdown_limit,
            entity=query.entity,
        )
    except SpecError as exc:
        head, _, rest = exc.field.partition("/")
        parts: list[str | int] = [where, names.get(head, head)]
        if rest:
            parts.append(int(rest) - 1)
        raise InvalidInput.field(parts, f"{exc.field}: {exc.reason}") from exc


def _steps(group: FunnelGroup) -> list[StepRead]:
    return [
        StepRead(
            step=s.step,
            label=s.label,
            entered=s.entered,
            converted=s.converted,
            dropped_off=s.dropped_off,
            in_window=s.in_window,
            conversion_from_previous=s.conversion_from_previous,
            conversion_from_first=s.conversion_from_first,
            median_seconds_to_convert=s.median_seconds,
            average_seconds_to_convert=s.average_seconds,
        )
        for s in group.steps
    ]
