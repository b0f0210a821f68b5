"""A funnel answer from a query: the spec parsed (errors name the field), run on the store.

Shared by the HTTP routes (GET parameters, POST body) and the report kind ``conversion``."""

from __future__ import annotations

from datetime import datetime, timedelta

from dataintel.analytics.cache import minute_now
from dataintel.analytics.funnel_schemas import FunnelGroupRead, FunnelQuery, FunnelRead, StepRead
from dataintel.analytics.funnels import FunnelGroup, run_funnel
from dataintel.analytics.funnels_spec import (
    FunnelSpec,
    SpecError,
    parse_duration,
    parse_exclusion,
    parse_match,
    parse_step_window,
)
from dataintel.errors import InvalidInput
from dataintel.storage.analytics.port import AnalyticsStore

DEFAULT_RANGE = timedelta(days=30)


def funnel_answer(
    store: AnalyticsStore,
    project_id: str,
    query: FunnelQuery,
    where: str,
    now: datetime | None = None,
) -> FunnelRead:
    """``where``: where the query came from ("query" or "body"), for the errors' locations;
    ``now``: what ``to`` defaults to (default: the current minute)."""
    spec = funnel_spec(query, where, now)
    result = run_funnel(store, project_id, spec)
    return FunnelRead(
        project_id=project_id,
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


def funnel_spec(query: FunnelQuery, where: str, now: datetime | None = None) -> FunnelSpec:
    """The query checked and parsed; an error names its parameter under ``where``."""
    names = {"step": "steps", "step_window": "step_windows"} if where == "body" else {}
    try:
        end = query.to or now or minute_now()
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
