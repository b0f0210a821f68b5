"""Building blocks of analytics SQL written once in DuckDB's dialect (``AnalyticsStore.sql``
transpiles it for ClickHouse): positional parameters and the property / time expressions
that read the same on both engines. Shared by every plane that queries the analytics
store (analytics, export)."""

from __future__ import annotations

from typing import Any

EPOCH_SQL = "TIMESTAMP '1970-01-01 00:00:00'"


class Params:
    """Positional parameters ``$1, $2, …``; an equal value is bound once."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[tuple[type, Any], int] = {}

    def __call__(self, value: Any) -> str:
        key = (type(value), tuple(value) if isinstance(value, list) else value)
        if key not in self._index:
            self.values.append(value)
            self._index[key] = len(self.values)
        return f"${self._index[key]}"


def lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _path(field: str) -> str:
    return lit("$." + field) if field.isidentifier() else lit('$."' + field + '"')


def text_field(field: str) -> str:
    """A property as text; NULL when missing, JSON null or '' (ClickHouse answers '' for a
    missing key where DuckDB answers NULL: ``nullif`` makes them agree)."""
    return f"nullif(json_extract_string(properties, {_path(field)}), '')"


def number_field(field: str) -> str:
    """A property as a number (a JSON number or numeric text); NULL otherwise."""
    return f"TRY_CAST({text_field(field)} AS DOUBLE)"


def micros(column: str) -> str:
    """A timestamp column as UTC microseconds since the epoch (BIGINT on both engines)."""
    return f"date_diff('microsecond', {EPOCH_SQL}, {column})"
