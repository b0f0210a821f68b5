"""The registry of report kinds: a name → (its params model, a function producing the
report's data from a context and those params).

The analytics plane's analyses are kinds too (reports/analysis_kinds.py): ``analysis_data``
turns an answer into tables (one per list of rows, one row of the scalars) and charts (a
line chart of each time series).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
import pyarrow as pa
from pydantic import BaseModel

from dataintel.reports.data import ChartSpec, ReportContext, ReportData
from dataintel.reports.event_kinds import (
    EventCountsParams,
    EventsParams,
    event_counts_report,
    events_report,
)

P = TypeVar("P", bound=BaseModel)
A = TypeVar("A", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ReportKind(Generic[P]):
    name: str
    params: type[P]
    produce: Callable[[ReportContext, P], ReportData]

    def run(self, ctx: ReportContext, params: Mapping[str, Any]) -> ReportData:
        """Validate stored params again (the kind may have changed since) and produce."""
        return self.produce(ctx, self.params.model_validate(dict(params)))


KINDS: dict[str, ReportKind[Any]] = {}


def register(
    name: str,
    params: type[P],
    produce: Callable[[ReportContext, P], ReportData],
) -> None:
    if name in KINDS:
        raise ValueError(f"report kind {name!r} is already registered")
    KINDS[name] = ReportKind(name, params, produce)


def analysis_data(title: str, answer: BaseModel) -> ReportData:
    """An analysis answer as tables: its scalar fields as one row (``summary``), each field
    that is a list of objects as a table of its own (nested objects flattened to
    ``parent.child`` columns); a line chart per numeric column of a table whose first
    column holds times."""
    dumped = answer.model_dump(mode="python")
    scalars = {k: v for k, v in _flatten(dumped, top=True).items() if not isinstance(v, list)}
    tables: dict[str, pa.Table] = {}
    if scalars:
        tables["summary"] = pa.Table.from_pylist([scalars])
    for key, value in dumped.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables[key] = pa.Table.from_pylist([_flatten(v) for v in value])
    charts = tuple(c for name, table in tables.items() for c in _time_charts(name, table))
    return ReportData(title, tables, charts)


def _flatten(row: Mapping[str, Any], prefix: str = "", top: bool = False) -> dict[str, Any]:
    """Nested objects → ``parent.child`` keys; a list stays a list only at the top (where a
    list of objects becomes a table), any other list becomes JSON text."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        elif (
            isinstance(value, list) and top and value and all(isinstance(v, Mapping) for v in value)
        ):
            out[name] = value
        elif isinstance(value, list):
            out[name] = orjson.dumps(value, default=str).decode()
        else:
            out[name] = value
    return out


def _time_charts(name: str, table: pa.Table) -> list[ChartSpec]:
    if table.num_columns < 2 or name == "summary":
        return []
    first = table.schema.field(0)
    if not (pa.types.is_timestamp(first.type) or pa.types.is_date(first.type)):
        return []
    return [
        ChartSpec("line", name, first.name, f.name, None, f"{f.name} per {first.name}")
        for f in table.schema
        if f.name != first.name and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
    ][:6]


def kind_names() -> list[str]:
    return sorted(KINDS)


register("events", EventsParams, events_report)
register("event_counts", EventCountsParams, event_counts_report)


def _register_analyses() -> None:
    """The analytics plane's analyses (reports/analysis_kinds.py)."""
    from dataintel.reports import analysis_kinds as a

    register("overview", a.OverviewParams, a.overview_report)
    register("conversion", a.ConversionParams, a.conversion_report)
    register("revenue", a.RevenueParams, a.revenue_report)
    register("performance", a.PerformanceReportParams, a.performance_report)


def _register_custom() -> None:
    """POST /v1/export/custom's jobs (reports/custom_kind.py)."""
    from dataintel.reports import custom_kind

    register("custom", custom_kind.CustomExport, custom_kind.custom_report)


_register_analyses()
_register_custom()
