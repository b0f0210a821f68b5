"""One batch feature's values at run time t, in ONE query of the analytics store.

The query is written in DuckDB SQL (transpiled for ClickHouse by the store) with the field
reads of the offline path (``offline.sql.Fields``, so both engines read a property the same
way). An inner SELECT reads, from the project's events of the window that were received by
t, the entity and the fields the definition uses; the outer one groups by entity. A checked
expression (``model.batch``) names only the inner SELECT's columns, so it can read nothing
but those rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from dataintel.features.offline.sql import Fields
from dataintel.model.aggregations import Aggregation
from dataintel.model.batch import BatchFeatureSpec, parse_expression
from dataintel.model.batch_fields import declared_types
from dataintel.model.fields import ENVELOPE_FIELDS, FieldType
from dataintel.model.snapshot import PipelineSpec
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.queries import from_micros

_AGGREGATE = {
    Aggregation.COUNT: "count(*)",
    Aggregation.SUM: "coalesce(sum(x), 0)",
    Aggregation.AVG: "avg(x)",
    Aggregation.MIN: "min(x)",
    Aggregation.MAX: "max(x)",
    Aggregation.COUNT_DISTINCT: "count(DISTINCT k)",
}
_COLUMNS = {"timestamp": "ts"}  # envelope names that are not column names


def batch_query(
    spec: BatchFeatureSpec,
    pipelines: Sequence[PipelineSpec],
    project_id: str,
    t_us: int,
    dialect: str,
) -> tuple[str, list[object]]:
    """The query (columns ``entity``, ``value``) and its positional parameters."""
    fx = Fields(dialect)
    reads = [f"{fx.entity(spec.entity_key)} AS entity"]
    if spec.expression is None:
        assert spec.aggregation is not None
        if spec.field is not None and spec.aggregation is not Aggregation.COUNT:
            if spec.aggregation is Aggregation.COUNT_DISTINCT:
                reads.append(f"{fx.text(spec.field)} AS k")
            else:
                reads.append(f"{fx.number(spec.field)} AS x")
        value = _AGGREGATE[spec.aggregation]
    else:
        types = declared_types(pipelines, spec.pipeline_id, spec.source_event)
        tree = parse_expression(spec.expression)
        for name in _names(tree):
            reads.append(f"{_read(fx, name, types.get(name))} AS f_{name}")
        for column in list(tree.find_all(exp.Column)):
            column.replace(exp.column(f"f_{column.name}"))
        value = tree.sql(dialect="duckdb", normalize_functions=False)
    where = ["project_id = ?", "ts <= ?", "received_at <= ?"]
    start, end = spec.window_bounds(t_us)
    params: list[object] = [project_id, from_micros(end), from_micros(t_us)]
    if start is not None:
        where.append("ts >= ?")
        params.append(from_micros(start))
    for name, given in (("pipeline_id", spec.pipeline_id), ("event", spec.source_event)):
        if given is not None:
            where.append(f"{name} = ?")
            params.append(given)
    inner = f"SELECT {', '.join(reads)} FROM events WHERE {' AND '.join(where)}"  # noqa: S608
    query = (
        f"SELECT entity, {value} AS value FROM ({inner}) AS ev "  # noqa: S608
        "WHERE entity IS NOT NULL GROUP BY entity ORDER BY entity"
    )
    return query, params


def _names(tree: exp.Expr) -> list[str]:
    names: list[str] = []
    for column in tree.find_all(exp.Column, bfs=False):
        if column.name not in names:
            names.append(column.name)
    return names


def _read(fx: Fields, name: str, declared: FieldType | None) -> str:
    if name in ENVELOPE_FIELDS or name == "pipeline_id":
        return _COLUMNS.get(name, name)
    if declared is FieldType.NUMBER:
        return fx.number(name)
    return fx.text(name)


def compute(
    analytics: AnalyticsStore,
    spec: BatchFeatureSpec,
    pipelines: Sequence[PipelineSpec],
    project_id: str,
    t_us: int,
) -> dict[str, Any]:
    """entity id -> value, for every entity with events in the window (blocking)."""
    query, params = batch_query(spec, pipelines, project_id, t_us, analytics.dialect)
    table = analytics.sql(query, params)
    entities = table.column("entity").to_pylist()
    values = table.column("value").to_pylist()
    return {str(e): scalar(v) for e, v in zip(entities, values, strict=True)}


def scalar(value: Any) -> Any:
    """A JSON scalar: NaN and infinities (a division by zero on ClickHouse) are null, an
    integral count stays an int."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)
