"""Building blocks of analytics queries: bound parameters, the shared filters, time buckets.

Every query is DuckDB SQL run through ``AnalyticsStore.sql`` (transpiled for ClickHouse).
User values never enter the text: ``Binder`` hands out ``$n`` placeholders (a value bound
once may be used many times), and a property name is a bound JSON key, not SQL.
Expressions here give the same result on DuckDB and ClickHouse (tests/analytics run both):
a missing or empty string property is NULL, a non-numeric one read as a number is NULL.
"""

from __future__ import annotations

from datetime import timedelta

from dataintel.analytics.params import STEP, AnalyticsParams, EventField, Filter, Interval

_MICROSECOND = timedelta(microseconds=1)


class Binder:
    """Collects parameter values; ``bind(value)`` returns its placeholder (``$1``, ...)."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def bind(self, value: object) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    __call__ = bind


def text_of(target: EventField, b: Binder, alias: str = "") -> str:
    """The field's value as text (NULL when absent or empty)."""
    if target.column is not None:
        return f"{alias}{target.column}"
    return f"nullif(json_extract_string({alias}properties, {b(target.prop)}), '')"


def number_of(prop: str, b: Binder, alias: str = "") -> str:
    """A property read as a number (NULL when absent or not a number)."""
    return f"TRY_CAST(json_extract_string({alias}properties, {b(prop)}) AS DOUBLE)"


def _condition(f: Filter, b: Binder, alias: str) -> str:
    if f.op in ("=", "!="):
        value = text_of(f.field, b, alias)
        if f.op == "=":
            return f"{value} = {b(f.value)}"
        # "is not": an event without the field matches too
        return f"coalesce({value}, '') != {b(f.value)}"
    assert f.field.prop is not None  # parse_filter checks both
    assert f.number is not None
    return f"{number_of(f.field.prop, b, alias)} {f.op} {b(f.number)}"


def filters_sql(params: AnalyticsParams, b: Binder, alias: str = "") -> str:
    """`` AND ...`` for every filter of ``params`` (empty without filters)."""
    return "".join(f" AND {_condition(f, b, alias)}" for f in params.filters)


def scoped_events(project_id: str, params: AnalyticsParams, b: Binder, columns: str = "*") -> str:
    """A SELECT of the caller's events read before ``as_of`` that match the filters (put it
    in a CTE). The project is always a bound parameter."""
    return (
        f"SELECT {columns} FROM events WHERE project_id = {b(project_id)} "  # noqa: S608
        f"AND ts < {b(params.as_of)}{filters_sql(params, b)}"
    )


class Periods:
    """SQL for "which period and which point of the series does this moment fall in",
    for the period of ``params`` (1) and the previous one just before it (0)."""

    def __init__(self, params: AnalyticsParams, b: Binder) -> None:
        self.start = b(params.start)
        self.previous_start = b(params.previous().start)
        self.interval = params.interval
        self.step = (
            None if params.interval is Interval.MONTH else b(STEP[params.interval] // _MICROSECOND)
        )

    def within(self, moment: str) -> str:
        """The moment lies in one of the two periods (its end is checked by the caller's
        ``ts < as_of``)."""
        return f"{moment} >= {self.previous_start}"

    def period(self, moment: str) -> str:
        return f"CAST(CASE WHEN {moment} >= {self.start} THEN 1 ELSE 0 END AS BIGINT)"

    def bucket(self, moment: str) -> str:
        origin = (
            f"CASE WHEN {moment} >= {self.start} THEN {self.start} ELSE {self.previous_start} END"
        )
        if self.step is None:
            return f"CAST(date_diff('month', {origin}, {moment}) AS BIGINT)"
        return f"CAST(date_diff('microsecond', {origin}, {moment}) // {self.step} AS BIGINT)"
