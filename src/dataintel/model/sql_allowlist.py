"""The one gate for SQL that users write: a quality rule's predicate and a batch feature's
expression. Each is parsed by sqlglot (DuckDB's dialect) and every syntax node is checked
against an allow-list before anything runs: no subquery, table, window, parameter or
function outside the list can appear, so the fragment can only read the row (or the rows)
the engine hands it. ``SCALAR`` is what both allow; each caller adds its own nodes."""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
from sqlglot import exp

LOGIC: tuple[type[exp.Expr], ...] = (exp.And, exp.Or, exp.Not)
COMPARISONS: tuple[type[exp.Expr], ...] = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
SCALAR: tuple[type[exp.Expr], ...] = (
    *LOGIC,
    *COMPARISONS,
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Is,
    exp.In,
    exp.Case,
    exp.If,
    exp.Coalesce,
    exp.Abs,
    exp.Round,
    exp.Cast,
    exp.TryCast,
    exp.DataType,
)


class SqlRefused(ValueError):
    """The text does not parse, or is not one statement (the message says which)."""


def parse_single(text: str) -> exp.Expr:
    """The one statement ``text`` holds (``SqlRefused`` otherwise)."""
    try:
        statements = sqlglot.parse(text, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SqlRefused(f"does not parse: {first}") from exc
    if len(statements) != 1 or statements[0] is None:
        raise SqlRefused("must be one expression, not several statements")
    return statements[0]


def first_refused(
    nodes: Iterable[exp.Expr], allowed: tuple[type[exp.Expr], ...]
) -> exp.Expr | None:
    """The first node whose type is not in ``allowed``, if any."""
    return next((node for node in nodes if not isinstance(node, allowed)), None)


def describe(node: exp.Expr) -> str:
    """How a refused node is named in the 422."""
    if isinstance(node, exp.Anonymous):
        return f"function {node.name}()"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}()"
    if isinstance(node, exp.Subquery | exp.Select | exp.Query):
        return "a subquery"
    if isinstance(node, exp.Table):
        return "a table"
    if isinstance(node, exp.Window):
        return "a window function"
    if isinstance(node, exp.Placeholder | exp.Parameter):
        return "a parameter"
    return f"'{node.sql('duckdb')[:60]}' ({type(node).__name__})"
