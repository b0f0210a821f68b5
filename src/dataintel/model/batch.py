"""Batch features: values computed on a schedule in the analytics store, served beside the
real-time ones (docs/batch-features.md, ADR 0016).

A batch feature is an aggregation (the ``Aggregation`` vocabulary) of one event's field, or
one aggregate SQL expression over the project's events, per entity (an envelope id or any
property), over a window ending at the run's time. Its value at run time ``t`` aggregates
the events with ``event_time`` in ``[floor((t - W) / g) * g, t]`` (g = g(W), DESIGN.md §3)
that were received by ``t``. Runs are ``schedule`` apart; a value older than ``ttl`` is
served as ``stale``.

``parse_expression`` is the one gate of the SQL form (model/sql_allowlist.py): a single
expression with at least one aggregate, built only from the node types listed in ``_ALLOWED``
(arithmetic, comparisons,
CASE, a few scalar functions, COUNT / SUM / AVG / MIN / MAX / COUNT_IF / COUNT DISTINCT);
no subquery, table, star outside ``count(*)``, window, parameter or other function can
appear, so the expression can only read the rows the engine hands it (the project's events
of the window, by construction).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlglot import exp

from dataintel.model.aggregations import Aggregation
from dataintel.model.fields import FIELD_NAME
from dataintel.model.sql_allowlist import SCALAR, SqlRefused, describe, parse_single
from dataintel.model.windows import LIFETIME, parse_window

EXPRESSION_MAX = 2000
# An entity without events in the window (absent from a run): this value, as the online
# path's empty-window rule (DESIGN.md §3). Expressions: null.
ZERO_WHEN_EMPTY = frozenset({Aggregation.COUNT, Aggregation.SUM, Aggregation.COUNT_DISTINCT})
# Envelope names an expression may read (``timestamp`` is the event time).
EXPRESSION_ENVELOPE = frozenset(
    {"event", "event_id", "pipeline_id", "user_id", "cart_id", "session_id", "timestamp"}
)

Duration = Annotated[str, Field(max_length=16)]


def duration_seconds(text: str) -> int:
    """A window-syntax duration (``30m``, ``7d``; not lifetime) in seconds."""
    if text == LIFETIME:
        raise ValueError("must be a duration such as 30m, 24h or 7d, not 'lifetime'")
    seconds = parse_window(text).seconds
    assert seconds is not None
    return seconds


class BatchFeatureSpec(BaseModel):
    """A batch feature as deployed (one of ``aggregation`` + ``source_event`` or
    ``expression``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    entity_key: str = "user_id"
    pipeline_id: str | None = None
    source_event: str | None = None
    aggregation: Aggregation | None = None
    field: str | None = None
    expression: str | None = None
    window: str = "30d"
    schedule: str = "1h"
    ttl: str = "2h"
    enabled: bool = True
    version: int = 1

    @model_validator(mode="after")
    def _shape(self) -> BatchFeatureSpec:
        if (self.expression is None) == (self.aggregation is None):
            raise ValueError("give either aggregation (with source_event) or expression")
        parse_window(self.window)
        duration_seconds(self.schedule)
        duration_seconds(self.ttl)
        return self

    @property
    def state_field(self) -> str:
        """The online store's field of this version: ``<name>@<version>``."""
        return f"{self.name}@{self.version}"

    def window_bounds(self, t_us: int) -> tuple[int | None, int]:
        """The event-time range read by a run at ``t_us`` (µs, both inclusive; None: from the
        beginning, a lifetime window)."""
        w = parse_window(self.window)
        if w.seconds is None:
            return None, t_us
        g = (w.granularity_seconds or 1) * 1_000_000
        return ((t_us - w.seconds * 1_000_000) // g) * g, t_us

    def empty_value(self) -> int | None:
        """The value of an entity without events in the window."""
        return 0 if self.aggregation in ZERO_WHEN_EMPTY else None


class ExpressionRefused(ValueError):
    """The expression is not one aggregate over event fields (the message says why)."""


_AGGREGATES: tuple[type[exp.Expr], ...] = (
    exp.Count,
    exp.Sum,
    exp.Avg,
    exp.Min,
    exp.Max,
    exp.CountIf,
)
_ALLOWED: tuple[type[exp.Expr], ...] = (
    *_AGGREGATES,
    *SCALAR,
    exp.Nullif,
    exp.Greatest,
    exp.Least,
    exp.Distinct,
    exp.Star,
)
_NUMERIC_TYPES = frozenset({exp.DType.DOUBLE, exp.DType.BIGINT, exp.DType.INT})


def parse_expression(text: str) -> exp.Expr:
    """The checked expression tree (``ExpressionRefused`` otherwise)."""
    try:
        tree = parse_single(f"SELECT {text}")
    except SqlRefused as exc:
        raise ExpressionRefused(str(exc)) from exc
    if (
        not isinstance(tree, exp.Select)
        or len(tree.expressions) != 1
        or any(tree.args.get(k) for k in tree.args if k != "expressions")
    ):
        raise ExpressionRefused("must be one expression (no FROM, WHERE, list or statement)")
    expression: exp.Expr = tree.expressions[0]
    _check(expression)
    return expression


def _check(tree: exp.Expr) -> None:
    if isinstance(tree, exp.Alias):
        raise ExpressionRefused("must not carry an alias (the feature's name is its name)")
    aggregates = 0
    for node in tree.walk():
        if isinstance(node, exp.DataType):
            if node.this not in _NUMERIC_TYPES and node.this is not exp.DType.VARCHAR:
                raise ExpressionRefused(f"cannot cast to {node.sql('duckdb')}")
            continue
        if not isinstance(node, _ALLOWED):
            raise ExpressionRefused(f"{describe(node)} is not allowed in a batch expression")
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            raise ExpressionRefused("* is only allowed as count(*)")
        if isinstance(node, exp.Column):
            if node.table or not isinstance(node.this, exp.Identifier):
                raise ExpressionRefused(f"'{node.sql()}': name a field, not a table's column")
            if not _field_name(node.name):
                raise ExpressionRefused(f"'{node.name}' is not a field name")
        if isinstance(node, _AGGREGATES):
            aggregates += 1
            if any(
                isinstance(a, _AGGREGATES) for a in node.find_all(*_AGGREGATES) if a is not node
            ):
                raise ExpressionRefused("aggregates cannot be nested")
    if not aggregates:
        raise ExpressionRefused("must aggregate (count, sum, avg, min, max, count_if)")
    for column in tree.find_all(exp.Column):
        if not any(isinstance(p, _AGGREGATES) for p in _parents(column)):
            raise ExpressionRefused(f"'{column.name}' must be inside an aggregate")


def _parents(node: exp.Expr) -> list[exp.Expr]:
    out = []
    parent = node.parent
    while parent is not None:
        out.append(parent)
        parent = parent.parent
    return out


def _field_name(name: str) -> bool:
    return re.fullmatch(FIELD_NAME, name) is not None


def expression_fields(text: str) -> list[str]:
    """The field names an expression reads, in order of first use (checked)."""
    names: list[str] = []
    for column in parse_expression(text).find_all(exp.Column, bfs=False):
        if column.name not in names:
            names.append(column.name)
    return names
