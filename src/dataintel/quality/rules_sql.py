"""Quality rules compiled into SQL over the analytics store's ``events`` table.

Written once in DuckDB SQL (``AnalyticsStore.sql`` transpiles it for ClickHouse). The rules
of one dataset share ONE scan: a single ``SELECT`` whose columns are every rule's aggregates
(``r3_pass``, ``r3_total``, ...); rows never leave the engine. Volume, schema and referential
rules need a grouping, another source or a join, so each has a query of its own (volume rules
of one dataset and interval share theirs). Every query starts with ``project_id = $1``; user
values are bound parameters, and the only user text that enters SQL is a custom predicate
that passed ``model.quality_predicate`` and was re-rendered from its checked syntax tree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlglot import exp

from dataintel.model.fields import FieldType
from dataintel.model.quality import (
    ENVELOPE_COLUMNS,
    AcceptedValuesRule,
    CustomSqlRule,
    DriftRule,
    DuplicateRule,
    FreshnessRule,
    MissingRule,
    QualityRule,
    RangeRule,
    ReferentialRule,
    RegexRule,
)
from dataintel.model.quality_predicate import check_predicate, column_path
from dataintel.storage.analytics.sql_terms import EPOCH_SQL, Params, lit

# Rule types whose aggregates go into the dataset's one scan.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCANNED = (MissingRule, DuplicateRule, RangeRule, AcceptedValuesRule, RegexRule, CustomSqlRule)
PropertyTypes = Mapping[str, FieldType]  # top-level property name -> declared type


@dataclass(frozen=True, slots=True)
class Dataset:
    """What one scan reads: a project's events of one name (or all) of one pipeline (or all)
    in a window of event time ``[start, end)``."""

    project_id: str
    event: str | None
    pipeline: str | None
    start: datetime
    end: datetime


@dataclass(slots=True)
class Compiled:
    sql: str
    params: list[object]
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # rule -> its columns


def property_text(parts: Sequence[str]) -> str:
    """A property path as text (NULL when absent, JSON null or ''; same on both engines)."""
    path = "$." + ".".join(parts)
    return f"nullif(json_extract_string(properties, {lit(path)}), '')"


def column_expr(column: str, numeric: bool = False) -> str:
    """The SQL of a rule's column: an envelope column, or a property path (as text, or as
    a number: NULL when the text is not one)."""
    if column in ENVELOPE_COLUMNS:
        name = ENVELOPE_COLUMNS[column]
        return f"TRY_CAST({name} AS DOUBLE)" if numeric else name
    text = property_text(column.split(".")[1:])
    return f"TRY_CAST({text} AS DOUBLE)" if numeric else text


def where(data: Dataset, p: Params, time_column: str = "ts") -> str:
    """``project_id`` first, always; then the window and the dataset's filters."""
    terms = [
        f"project_id = {p(data.project_id)}",
        f"{time_column} >= {p(data.start)}",
        f"{time_column} < {p(data.end)}",
    ]
    if data.event is not None:
        terms.append(f"event = {p(data.event)}")
    if data.pipeline is not None:
        terms.append(f"pipeline_id = {p(data.pipeline)}")
    return " AND ".join(terms)


def predicate_sql(text: str, types: PropertyTypes) -> str:
    """A checked custom predicate in DuckDB SQL, its property paths made JSON extractions
    (a number when the deployed schema declares the property a number)."""
    tree = check_predicate(text).copy()

    def rewrite(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Column):
            return node
        parts = column_path(node)
        if parts[0] != "properties":
            return exp.column(parts[0])
        sql = property_text(parts[1:])
        if len(parts) == 2 and types.get(parts[1]) is FieldType.NUMBER:
            sql = f"TRY_CAST({sql} AS DOUBLE)"
        return exp.maybe_parse(sql, dialect="duckdb")

    return tree.transform(rewrite).sql(dialect="duckdb")


def row_terms(rule: QualityRule, p: Params, types: PropertyTypes) -> tuple[str, str]:
    """(passes, counts) of a row-level rule as conditions on one row: a row counts towards
    ``total`` when ``counts`` holds, and passes when both hold."""
    if isinstance(rule, CustomSqlRule):
        return f"coalesce(({predicate_sql(rule.predicate, types)}), false)", "true"
    assert isinstance(rule, (MissingRule, RangeRule, AcceptedValuesRule, RegexRule))
    value = column_expr(rule.column)
    if isinstance(rule, MissingRule):
        return f"{value} IS NOT NULL", "true"
    present = f"{value} IS NOT NULL"
    if isinstance(rule, RangeRule):
        number = column_expr(rule.column, numeric=True)
        bounds = [f"{number} >= {p(rule.min)}"] if rule.min is not None else []
        bounds += [f"{number} <= {p(rule.max)}"] if rule.max is not None else []
        return f"coalesce({' AND '.join(bounds)}, false)", present
    if isinstance(rule, AcceptedValuesRule):
        return f"coalesce(list_contains({p(list(rule.values))}, {value}), false)", present
    pattern = p(f"^(?:{rule.pattern})$")
    return f"coalesce(regexp_matches({value}, {pattern}), false)", present


def aggregates(rule: QualityRule, p: Params, types: PropertyTypes) -> tuple[str, str]:
    """(passing, total) aggregates of a scanned row-level rule."""
    if isinstance(rule, DuplicateRule):
        value = column_expr(rule.column)
        return f"count(DISTINCT {value})", f"count({value})"
    passes, counts = row_terms(rule, p, types)
    if counts == "true":
        return f"count_if({passes})", "count(*)"
    return f"count_if({counts} AND {passes})", f"count_if({counts})"


def scan(data: Dataset, rules: Sequence[QualityRule], types: PropertyTypes) -> Compiled:
    """The one SELECT of a dataset: every scanned rule's (pass, total), every freshness
    rule's newest event time."""
    p = Params()
    filters = where(data, p)
    select: list[str] = []
    columns: dict[str, tuple[str, ...]] = {}
    for i, rule in enumerate(rules):
        if isinstance(rule, FreshnessRule):
            # count(*): ClickHouse answers the epoch, not NULL, for max() of no rows
            select.append(f"max(ts) AS r{i}_newest, CAST(count(*) AS BIGINT) AS r{i}_rows")
            columns[rule.name] = (f"r{i}_newest", f"r{i}_rows")
        else:
            passing, total = aggregates(rule, p, types)
            select += [
                f"CAST({passing} AS BIGINT) AS r{i}_pass",
                f"CAST({total} AS BIGINT) AS r{i}_total",
            ]
            columns[rule.name] = (f"r{i}_pass", f"r{i}_total")
    sql = f"SELECT {', '.join(select)} FROM events WHERE {filters}"  # noqa: S608 - checked
    return Compiled(sql, p.values, columns)


def volume(data: Dataset, interval_us: int) -> Compiled:
    """Event counts per complete interval of the window (``data.start``/``end`` are
    aligned to the interval); interval index ``b`` counts from ``data.start``."""
    p = Params()
    filters = where(data, p)
    offset = f"date_diff('microsecond', {EPOCH_SQL}, ts) - {p(_micros(data.start))}"
    bucket = f"CAST(floor(({offset}) / {p(interval_us)}) AS BIGINT)"
    sql = (
        f"SELECT {bucket} AS b, count(*) AS n FROM events "  # noqa: S608 - fixed SQL
        f"WHERE {filters} GROUP BY b ORDER BY b"
    )
    return Compiled(sql, p.values)


def arrivals(data: Dataset) -> Compiled:
    """Events of the dataset that arrived (were accepted) in the window."""
    p = Params()
    sql = f"SELECT count(*) AS n FROM events WHERE {where(data, p, 'received_at')}"  # noqa: S608
    return Compiled(sql, p.values)


def referential(data: Dataset, rule: ReferentialRule) -> Compiled:
    """Rows of the dataset with a key, and those whose key an earlier (or simultaneous)
    ``parent_event`` of the same project carries. The parents are aggregated per key (first
    time, count), so the join is one row per key; an unmatched key reads count 0 on both
    engines (ClickHouse fills defaults where DuckDB gives NULL)."""
    p = Params()
    filters = where(data, p)
    key = column_expr(rule.column)
    parent_key = column_expr(rule.parent_column or rule.column)
    parents = (
        f"SELECT {parent_key} AS k, min(ts) AS first_ts, count(*) AS n FROM events "  # noqa: S608
        f"WHERE project_id = {p(data.project_id)} AND event = {p(rule.parent_event)} "
        f"AND ts < {p(data.end)} AND {parent_key} IS NOT NULL GROUP BY {parent_key}"
    )
    children = f"SELECT {key} AS k, ts FROM events WHERE {filters} AND {key} IS NOT NULL"  # noqa: S608
    matched = "coalesce(coalesce(p.n, 0) > 0 AND p.first_ts <= c.ts, false)"
    sql = (
        f"SELECT CAST(count_if({matched}) AS BIGINT) AS passing, "  # noqa: S608 - fixed SQL
        f"CAST(count(*) AS BIGINT) AS total FROM ({children}) AS c "
        f"LEFT JOIN ({parents}) AS p ON c.k = p.k"
    )
    return Compiled(sql, p.values)


def _micros(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


def drift_size(data: Dataset, rule: DriftRule) -> Compiled:
    """How many values the column has in ``data`` (the reference window)."""
    p = Params()
    value = column_expr(rule.column, numeric=True)
    sql = f"SELECT CAST(count({value}) AS BIGINT) AS n FROM events WHERE {where(data, p)}"  # noqa: S608
    return Compiled(sql, p.values)


def drift_ranks(data: Dataset, rule: DriftRule, ranks: Sequence[int]) -> Compiled:
    """The column's values at the given 0-based ranks of its ascending order in ``data``
    (the few a quantile interpolates between): exact, the same on both engines, whose
    quantile functions differ (DuckDB's quantile_cont, ClickHouse's approximate quantile)."""
    p = Params()
    value = column_expr(rule.column, numeric=True)
    ordered = (
        f"SELECT {value} AS x, row_number() OVER (ORDER BY {value}) - 1 AS i "  # noqa: S608
        f"FROM events WHERE {where(data, p)} AND {value} IS NOT NULL"
    )
    wanted = ", ".join(p(r) for r in ranks)
    sql = f"SELECT i, x FROM ({ordered}) AS o WHERE i IN ({wanted})"  # noqa: S608 - params
    return Compiled(sql, p.values)


def drift_counts(
    data: Dataset, rule: DriftRule, edges: Sequence[float], split: datetime
) -> Compiled:
    """Values per bin — (-inf, e1], (e1, e2], …, (ek, inf) — before ``split`` (the
    reference) and from it (the current window), over ``data``'s whole span."""
    p = Params()
    value = column_expr(rule.column, numeric=True)
    cases = " ".join(f"WHEN {value} <= {p(e)} THEN {i}" for i, e in enumerate(edges))
    bin_of = f"CASE {cases} ELSE {len(edges)} END" if edges else "0"
    sql = (
        f"SELECT CAST(ts >= {p(split)} AS INTEGER) AS cur, {bin_of} AS b, "  # noqa: S608
        f"CAST(count(*) AS BIGINT) AS n FROM events "
        f"WHERE {where(data, p)} AND {value} IS NOT NULL GROUP BY cur, b"
    )
    return Compiled(sql, p.values)
