"""The custom SQL predicate of a quality rule: one boolean expression over one event.

The text is parsed with sqlglot (DuckDB dialect) and checked against an allow-list of
syntax nodes (model/sql_allowlist.py) before anything runs: comparisons, boolean logic,
arithmetic, literals, ``CASE``, ``IN (<literals>)``, ``BETWEEN``, ``LIKE``,
``IS [NOT] NULL``, casts and a few pure scalar functions. Columns are the event's envelope
columns and ``properties.<name>[.<name>]``. Everything else is refused, so there is no
subquery, no table reference, no function that reads files or settings, and no second
statement: the predicate can only read the row it is given. The rule runner then compiles
it into ``WHERE project_id = $1 AND (<predicate>)`` (quality/rules_sql.py), so it never
sees another project's events.
"""

from __future__ import annotations

from sqlglot import exp

from dataintel.model.sql_allowlist import (
    COMPARISONS,
    LOGIC,
    SCALAR,
    SqlRefused,
    describe,
    first_refused,
    parse_single,
)

MAX_NODES = 300
PREDICATE_COLUMNS = frozenset(
    {"event_id", "event", "user_id", "cart_id", "session_id", "pipeline_id", "ts", "received_at"}
)
_ALLOWED: tuple[type[exp.Expr], ...] = (
    *SCALAR,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.RegexpLike,
    exp.DPipe,
)

_BOOLEAN: tuple[type[exp.Expr], ...] = (
    *LOGIC,
    *COMPARISONS,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Boolean,
    exp.RegexpLike,
)


def check_predicate(text: str) -> exp.Expr:
    """The parsed predicate; ValueError (naming what is refused) when it is not one boolean
    expression over an event's columns."""
    try:
        tree = parse_single(text)
    except SqlRefused as exc:
        raise ValueError(f"the predicate {exc}") from exc
    if isinstance(tree, exp.Query | exp.Command) or not isinstance(tree, exp.Condition):
        raise ValueError("the predicate must be a boolean expression, not a statement")
    top = tree.unnest() if isinstance(tree, exp.Paren) else tree
    if not isinstance(top, _BOOLEAN):
        raise ValueError(
            "the predicate must be a boolean expression: a comparison, a test (IS NULL, IN, "
            "BETWEEN, LIKE, regexp_matches) or a combination of them with AND / OR / NOT"
        )
    nodes = list(tree.walk())
    if len(nodes) > MAX_NODES:
        raise ValueError(f"the predicate is too long (more than {MAX_NODES} syntax nodes)")
    if (refused := first_refused(nodes, _ALLOWED)) is not None:
        raise ValueError(
            f"{describe(refused)} is not allowed in a predicate (no subqueries, tables, "
            "or functions beyond the documented ones)"
        )
    for node in nodes:
        if isinstance(node, exp.In) and (node.args.get("query") or node.args.get("unnest")):
            raise ValueError("IN takes a list of literals, not a subquery")
        if isinstance(node, exp.Column):
            column_path(node)
    return tree


def column_path(column: exp.Column) -> tuple[str, ...]:
    """('user_id',) for an envelope column, ('properties', 'a', 'b') for a property path;
    ValueError for anything else."""
    parts = tuple(part.name for part in column.parts)
    if len(parts) == 1 and parts[0] in PREDICATE_COLUMNS:
        return parts
    if len(parts) >= 2 and parts[0] == "properties" and all(p.isidentifier() for p in parts):
        return parts
    shown = ".".join(parts)[:100]
    raise ValueError(
        f"unknown column {shown!r}: use an envelope column "
        f"({', '.join(sorted(PREDICATE_COLUMNS))}) or properties.<name>"
    )
