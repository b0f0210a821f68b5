"""The analyses of the analytics plane as report kinds: ``overview``, ``conversion``,
``revenue``, ``performance``.

Each kind's params are the analysis's own parameters (as the GET route takes them, names
included: ``from``, ``to``, …), checked when the report is requested, so a bad one is a 422
naming it rather than a failed report; the run computes the same answer the route would
(the same service, the project's deployed analytics settings) and ``analysis_data`` turns it
into tables and charts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataintel.analytics.attribution import RevenueService
from dataintel.analytics.attribution_params import revenue_params
from dataintel.analytics.attribution_sql import Model
from dataintel.analytics.funnel_schemas import FunnelQuery
from dataintel.analytics.funnel_service import funnel_answer, funnel_spec
from dataintel.analytics.params import MAX_FILTERS, Interval, resolve
from dataintel.analytics.performance import PerformanceService
from dataintel.analytics.performance_params import performance_params
from dataintel.analytics.performance_schemas import BinStrategy
from dataintel.analytics.performance_schemas import Interval as Step
from dataintel.analytics.service import AnalyticsService
from dataintel.analytics.settings import deployed_settings
from dataintel.api.types import UtcTime
from dataintel.errors import InvalidInput
from dataintel.model.snapshot import AnalyticsSettings
from dataintel.reports.data import ReportContext, ReportData


def checked(check: Callable[[], Any]) -> None:
    """Run a parameter check of the analysis; its InvalidInput becomes a validation error
    (so the report request is a 422 naming the parameter)."""
    try:
        check()
    except InvalidInput as exc:
        raise ValueError(exc.detail) from exc


class OverviewParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: UtcTime | None = Field(default=None, alias="from")
    end: UtcTime | None = Field(default=None, alias="to")
    interval: Interval | None = None
    filter: list[str] = Field(default_factory=list, max_length=MAX_FILTERS)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        checked(lambda: resolve(self.start, self.end, self.interval, self.filter or None))
        return self


def overview_report(ctx: ReportContext, p: OverviewParams) -> ReportData:
    params = resolve(p.start, p.end, p.interval, p.filter or None, now=ctx.now)
    deployed = deployed_settings(ctx.configs, ctx.project_id)
    answer = AnalyticsService(ctx.analytics).overview(ctx.project_id, params, deployed)
    return analysis_data("Overview", answer)


class ConversionParams(FunnelQuery):
    @model_validator(mode="after")
    def _valid(self) -> Self:
        checked(lambda: funnel_spec(self, "body"))
        return self


def conversion_report(ctx: ReportContext, p: ConversionParams) -> ReportData:
    answer = funnel_answer(ctx.analytics, ctx.project_id, p, "body")
    return analysis_data("Conversion funnel", answer)


class RevenueParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: UtcTime | None = Field(default=None, alias="from")
    end: UtcTime | None = Field(default=None, alias="to")
    model: Model = Model.LAST_TOUCH
    window: str | None = Field(default=None, max_length=16)
    half_life: str | None = Field(default=None, max_length=16)
    horizon: str | None = Field(default=None, max_length=16)
    currency: str | None = Field(default=None, min_length=1, max_length=16)

    def build(self, settings: AnalyticsSettings) -> Any:
        return revenue_params(
            settings,
            start=self.start,
            end=self.end,
            model=self.model,
            window=self.window,
            half_life=self.half_life,
            horizon=self.horizon,
            currency=self.currency,
        )

    @model_validator(mode="after")
    def _valid(self) -> Self:
        checked(lambda: self.build(AnalyticsSettings()))  # durations and their rules
        return self


def revenue_report(ctx: ReportContext, p: RevenueParams) -> ReportData:
    settings = ctx.configs.get(ctx.project_id).snapshot.analytics
    answer = RevenueService(ctx.analytics).revenue(ctx.project_id, settings, p.build(settings))
    return analysis_data("Revenue attribution and uplift", answer)


class PerformanceReportParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: UtcTime | None = Field(default=None, alias="from")
    end: UtcTime | None = Field(default=None, alias="to")
    interval: Step = Step.DAY
    horizon: str | None = Field(default=None, max_length=16)
    model_version: list[str] = Field(default_factory=list, max_length=100)
    bins: int = Field(default=10, ge=2, le=100)
    strategy: BinStrategy = BinStrategy.UNIFORM
    top: list[float] = Field(default_factory=list, max_length=20)

    def build(self, settings: AnalyticsSettings) -> Any:
        return performance_params(
            settings,
            self.start,
            self.end,
            self.interval,
            self.horizon,
            self.model_version or None,
            self.bins,
            self.strategy,
            self.top or None,
        )

    @model_validator(mode="after")
    def _valid(self) -> Self:
        checked(lambda: self.build(AnalyticsSettings()))
        return self


def performance_report(ctx: ReportContext, p: PerformanceReportParams) -> ReportData:
    settings = ctx.configs.get(ctx.project_id).snapshot.analytics
    service = PerformanceService(ctx.analytics)
    answer = service.performance(ctx.project_id, settings, p.build(settings))
    return analysis_data("Model performance", answer)


def analysis_data(title: str, answer: BaseModel) -> ReportData:
    from dataintel.reports.kinds import analysis_data as tables_of

    return tables_of(title, answer)
