"""One query representation for both dialects.

Every read query is written once, in DuckDB SQL with ``$name`` parameters, as a ``Query``.
DuckDB runs the text as written and binds the parameters itself; for ClickHouse the text is
transpiled by sqlglot (``read="duckdb", write="clickhouse"``) and every ``$name`` becomes a
typed ``{name:Type}`` engine parameter. User values never enter the SQL text.

Results are normalised to one Arrow shape (``normalize``) so both engines return the same
table for the same query: signed 64-bit integers, UTC µs timestamps, plain strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp

from dataintel.storage.analytics.decode import EVENT_SCHEMA, TIMESTAMP
from dataintel.storage.analytics.port import EVENT_COLUMNS, EventQuery
from dataintel.storage.errors import InvalidQuery

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The tables a caller's query may read (plus its own CTEs).
READABLE_TABLES = frozenset({"events", "batch_feature_values"})


@dataclass(frozen=True, slots=True)
class Query:
    """A read query in DuckDB SQL with ``$name`` placeholders, and its parameter values."""

    text: str
    params: Mapping[str, object] = field(default_factory=dict)

    def duckdb(self) -> tuple[str, dict[str, object]]:
        return self.text, {name: _duck_value(value) for name, value in self.params.items()}

    def clickhouse(self, renames: Mapping[str, str] | None = None) -> tuple[str, dict[str, object]]:
        """ClickHouse SQL and parameters; ``renames`` maps table names to the engine's."""
        types = tuple(sorted((name, ch_type(value)) for name, value in self.params.items()))
        values = {name: _ch_value(value) for name, value in self.params.items()}
        if renames:
            return _transpile(self.text, types, renames), values
        return transpile(self.text, types), values


@lru_cache(maxsize=512)
def transpile(text: str, types: tuple[tuple[str, str], ...]) -> str:
    """DuckDB SQL → ClickHouse SQL, ``$name`` → ``{name:Type}`` (cached per query shape)."""
    return _transpile(text, types)


def _transpile(
    text: str, types: tuple[tuple[str, str], ...], renames: Mapping[str, str] | None = None
) -> str:
    tree = sqlglot.parse_one(text, read="duckdb")
    kinds = dict(types)
    for placeholder in tree.find_all(exp.Placeholder):
        name = str(placeholder.name)
        placeholder.set("kind", exp.DataType.build(kinds[name], dialect="clickhouse"))
    for table in list(tree.find_all(exp.Table)) if renames else []:
        actual = (renames or {}).get(table.name)
        if actual is not None and not table.args.get("db"):
            if not table.alias:  # keep ``name.column`` references working
                table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
            table.set("this", exp.to_identifier(actual))
    return tree.sql(dialect="clickhouse")


def ch_type(value: object) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, str):
        return "String"
    if isinstance(value, datetime):
        return "DateTime64(6, 'UTC')"
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return "Array(String)"
    if isinstance(value, list | tuple) and all(isinstance(v, int) for v in value):
        return "Array(Int64)"
    raise InvalidQuery(f"unsupported query parameter type {type(value).__name__}")


def _utc(value: datetime) -> datetime:
    """Aware → naive UTC; naive values are taken as UTC already."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _duck_value(value: object) -> object:
    return _utc(value) if isinstance(value, datetime) else value


def _ch_value(value: object) -> object:
    if isinstance(value, datetime):
        return _utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")
    return list(value) if isinstance(value, tuple) else value


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


# ---- the store's own queries, written once ---------------------------------------------

_SELECT_EVENTS = "SELECT " + ", ".join(EVENT_COLUMNS) + " FROM events"  # noqa: S608


def scan_events(query: EventQuery) -> Query:
    where = ["project_id = $project_id"]
    params: dict[str, object] = {"project_id": query.project_id}
    if query.start is not None:
        where.append("ts >= $start")
        params["start"] = query.start
    if query.end is not None:
        where.append("ts < $end")
        params["end"] = query.end
    if query.events:
        where.append("list_contains($events, event)")
        params["events"] = list(query.events)
    for column in ("user_id", "cart_id", "session_id"):
        value = getattr(query, column)
        if value is not None:
            where.append(f"{column} = ${column}")
            params[column] = value
    if query.pipeline_id is not None:
        where.append("pipeline_id = $pipeline_id")
        params["pipeline_id"] = query.pipeline_id
    if query.after is not None:
        where.append("(ts > $after_ts OR (ts = $after_ts AND event_id > $after_id))")
        params["after_ts"] = from_micros(query.after[0])
        params["after_id"] = query.after[1]
    text = f"{_SELECT_EVENTS} WHERE {' AND '.join(where)} ORDER BY ts, event_id"
    return Query(text, params)


_COUNT = (
    "SELECT event, date_trunc('hour', received_at) AS hour, count(*) AS n FROM events "
    "WHERE project_id = $project_id {since}GROUP BY event, hour ORDER BY hour, event"
)


def count_events(project_id: str, since: datetime | None) -> Query:
    if since is None:
        return Query(_COUNT.format(since=""), {"project_id": project_id})
    text = _COUNT.format(since="AND received_at >= $since ")
    return Query(text, {"project_id": project_id, "since": since})


POSITIONS = Query(
    "SELECT log_partition, max(next_offset) AS next_offset FROM log_positions "
    "GROUP BY log_partition"
)


def stored_event_ids(project_id: str, event_ids: Sequence[str]) -> Query:
    """Which of ``event_ids`` a project already has (the ClickHouse sink's anti-join)."""
    return Query(
        "SELECT event_id FROM events "
        "WHERE project_id = $project_id AND list_contains($event_ids, event_id)",
        {"project_id": project_id, "event_ids": list(event_ids)},
    )


# ---- a caller's read-only query ----------------------------------------------------------


def user_query(text: str, params: Sequence[object], tables: frozenset[str] = frozenset()) -> Query:
    """Check that ``text`` is one read-only query over READABLE_TABLES (and the caller's
    ``tables``); name its parameters.

    ``?`` and ``$1``-style positional placeholders become ``$p0``, ``$p1``, ...
    Function names keep their case, so a ClickHouse function DuckDB lacks (``JSONType``)
    reaches ClickHouse as written. The check is cached per query text.
    """
    checked, used = _checked(text, tables)
    if used != frozenset(range(len(params))):
        raise InvalidQuery(f"the query has {len(used)} parameters, {len(params)} given")
    return Query(checked, {f"p{i}": v for i, v in enumerate(params)})


@lru_cache(maxsize=256)
def _checked(text: str, tables: frozenset[str]) -> tuple[str, frozenset[int]]:
    try:
        statements = sqlglot.parse(text, read="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise InvalidQuery(f"the query does not parse: {exc}") from exc
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise InvalidQuery("only one SELECT query is allowed")
    tree = statements[0]
    _check_tables(tree, tables)
    used: set[int] = set()
    # Depth-first: placeholders in text order (breadth-first would bind "a = ? AND b = ?
    # AND c = ?" as c, a, b).
    for placeholder in list(tree.find_all(exp.Placeholder, bfs=False)):
        name = str(placeholder.name).strip("?")
        if name and not name.isdigit():
            raise InvalidQuery(f"named parameter ${name}: use positional parameters")
        index = int(name) - 1 if name else len(used)
        used.add(index)
        placeholder.replace(exp.Placeholder(this=f"p{index}"))
    return tree.sql(dialect="duckdb", normalize_functions=False), frozenset(used)


def caller_tables(tables: Mapping[str, pa.Table] | None) -> dict[str, pa.Table]:
    """The Arrow tables a caller lends a query (``sql_batches``), by checked name."""
    for name in tables or {}:
        if not name.isidentifier() or name.lower() in READABLE_TABLES | {"log_positions"}:
            raise InvalidQuery(f"invalid table name {name!r}")
    return dict(tables or {})


def naive_utc(table: pa.Table) -> pa.Table:
    """Time-zone-aware timestamp columns → naive UTC (DuckDB's TIMESTAMP columns hold UTC)."""
    for index, column in enumerate(table.schema):
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            naive = pa.timestamp(kind.unit)
            table = table.set_column(
                index,
                pa.field(column.name, naive, column.nullable),
                pc.cast(table.column(index), naive),
            )
    return table


def _check_tables(tree: exp.Expr, tables: frozenset[str] = frozenset()) -> None:
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)} | tables
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or table.args.get("db"):
            raise InvalidQuery("only the events table can be read")
        if table.name not in READABLE_TABLES | ctes:
            raise InvalidQuery(f"unknown table {table.name!r}: only events can be read")


# ---- one result shape -------------------------------------------------------------------


def normalize(table: pa.Table) -> pa.Table:
    """Engine-specific Arrow types → one shape (int64, UTC µs timestamps, strings)."""
    columns = [_normalize_column(column) for column in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _normalize_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if isinstance(kind, pa.ExtensionType):
        return _normalize_column(pa.chunked_array([c.storage for c in column.chunks]))
    if pa.types.is_dictionary(kind):
        return _normalize_column(column.cast(kind.value_type))
    if pa.types.is_integer(kind) and kind != pa.int64():
        return column.cast(pa.int64())
    if pa.types.is_decimal(kind) and kind.scale == 0:
        return column.cast(pa.int64())
    if pa.types.is_timestamp(kind) and kind != TIMESTAMP:
        if kind.tz is None:
            column = column.cast(pa.timestamp(kind.unit, tz="UTC"))
        return column.cast(TIMESTAMP)
    if pa.types.is_large_string(kind):
        return column.cast(pa.string())
    if pa.types.is_float32(kind):
        return column.cast(pa.float64())
    return column


def rebatch(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Scanned batches of any size → batches of exactly ``rows`` rows (the last one fewer),
    in EVENT_SCHEMA. Holds at most one output batch plus one input batch."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield _events(table.slice(0, rows))
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield _events(pa.Table.from_batches(pending))


def sized(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of any size → normalised batches of at most ``rows`` rows (no empty ones)."""
    for batch in batches:
        for start in range(0, batch.num_rows, rows):
            piece = pa.Table.from_batches([batch.slice(start, rows)])
            yield normalize(piece).combine_chunks().to_batches()[0]


def _events(table: pa.Table) -> pa.RecordBatch:
    table = normalize(table).select(list(EVENT_COLUMNS))
    return table.cast(EVENT_SCHEMA).combine_chunks().to_batches()[0]
