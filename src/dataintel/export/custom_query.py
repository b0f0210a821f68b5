"""A custom export document → one SQL query over the project's events.

Checked against the project's deployed config first: an event name that no deployed
pipeline declares, or a ``properties.<name>`` that none of the selected events declares, is
a 422 naming it; a comparison or an aggregate that does not fit the field's type likewise.
The project is bound by construction: the compiler writes ``project_id = $1`` into every
query, and nothing of the document enters the SQL text but names that passed the checks
(as quoted aliases and JSON paths of fixed characters) — values are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from dataintel.errors import InvalidInput
from dataintel.export.custom_schemas import Aggregate, CustomExport, Filter
from dataintel.model.fields import FieldType
from dataintel.model.snapshot import ConfigSnapshot
from dataintel.storage.analytics.sql_terms import Params, number_field, text_field

# Envelope fields: the column, and the type of its values.
ENVELOPE: dict[str, tuple[str, FieldType]] = {
    "event_id": ("event_id", FieldType.STRING),
    "event": ("event", FieldType.STRING),
    "timestamp": ("ts", FieldType.TIMESTAMP),
    "received_at": ("received_at", FieldType.TIMESTAMP),
    "user_id": ("user_id", FieldType.STRING),
    "cart_id": ("cart_id", FieldType.STRING),
    "session_id": ("session_id", FieldType.STRING),
    "pipeline_id": ("pipeline_id", FieldType.STRING),
    "properties": ("properties", FieldType.OBJECT),
}
DEFAULT_FIELDS = ("event_id", "event", "timestamp", "user_id", "cart_id", "properties")
ARROW = {
    FieldType.STRING: pa.string(),
    FieldType.NUMBER: pa.float64(),
    FieldType.BOOLEAN: pa.string(),
    FieldType.TIMESTAMP: pa.string(),  # a timestamp property is text as sent
    FieldType.OBJECT: pa.string(),
}
UTC_US = pa.timestamp("us", tz="UTC")
ORDERED = {FieldType.NUMBER, FieldType.TIMESTAMP, FieldType.STRING}


@dataclass(frozen=True, slots=True)
class Column:
    expr: str
    type: FieldType
    envelope: bool


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    params: list[object]
    schema: pa.Schema


def _bad(loc: list[str | int], reason: str) -> InvalidInput:
    return InvalidInput.field(["body", *loc], reason)


def declared(snapshot: ConfigSnapshot) -> dict[str, dict[str, FieldType]]:
    """Event name → property → type, over every deployed pipeline (the first declaration
    wins when two pipelines type a property differently)."""
    out: dict[str, dict[str, FieldType]] = {}
    for pipeline in snapshot.pipelines:
        for event in pipeline.events:
            fields = out.setdefault(event.name, {})
            for f in event.fields:
                fields.setdefault(f.name, f.type)
    return out


class Compiler:
    def __init__(self, doc: CustomExport, project_id: str, snapshot: ConfigSnapshot) -> None:
        self.doc = doc
        self.row_order: list[str] = []  # the default ORDER BY (set by _rows / _aggregates)
        self.p = Params()
        self.project = self.p(project_id)  # $1, in every query
        events = declared(snapshot)
        for i, name in enumerate(doc.events):
            if name not in events:
                raise _bad(["events", i], f"no deployed pipeline declares the event {name!r}")
        self.events = list(doc.events) or sorted(events)
        self.props: dict[str, FieldType] = {}
        for name in self.events:
            for prop, kind in events.get(name, {}).items():
                self.props.setdefault(prop, kind)

    def column(self, ref: str, loc: list[str | int]) -> Column:
        if ref in ENVELOPE:
            column, envelope_type = ENVELOPE[ref]
            return Column(column, envelope_type, True)
        prefix, _, name = ref.partition(".")
        if prefix != "properties" or not name:
            raise _bad(loc, f"unknown field {ref!r}: an envelope field or properties.<name>")
        kind = self.props.get(name)
        if kind is None:
            raise _bad(loc, f"{ref!r} is not a declared property of the selected events")
        expr = number_field(name) if kind is FieldType.NUMBER else text_field(name)
        return Column(expr, kind, False)

    def compile(self) -> Compiled:
        doc, p = self.doc, self.p
        where = [f"project_id = {self.project}"]
        where.append(f"list_contains({p(list(self.events))}, event)" if self.events else "FALSE")
        if doc.from_ is not None:
            where.append(f"ts >= {p(_naive(doc.from_))}")
        if doc.to is not None:
            where.append(f"ts < {p(_naive(doc.to))}")
        where += [self._filter(f, ["filters", i]) for i, f in enumerate(doc.filters)]
        if doc.aggregations:
            select, schema, group = self._aggregates()
        else:
            select, schema = self._rows()
            group = []
        order = self._order([f.name for f in schema])
        # Only checked names and fixed SQL enter the text; values are bound.
        text = (
            "SELECT "  # noqa: S608
            + ", ".join(select)
            + " FROM events WHERE "
            + " AND ".join(where)
            + (" GROUP BY " + ", ".join(group) if group else "")
            + (" ORDER BY " + ", ".join(order) if order else "")
            + f" LIMIT {int(doc.limit)}"
        )
        return Compiled(text, p.values, pa.schema(schema))

    def _rows(self) -> tuple[list[str], list[pa.Field]]:
        refs = list(self.doc.fields) or list(DEFAULT_FIELDS)
        if len(set(refs)) != len(refs):
            raise _bad(["fields"], "a field is named twice")
        select, schema = [], []
        for i, ref in enumerate(refs):
            col = self.column(ref, ["fields", i])
            select.append(f'{col.expr} AS "{ref}"')
            schema.append(pa.field(ref, _arrow(col)))
        self.row_order = ["ts", "event_id"]
        return select, schema

    def _aggregates(self) -> tuple[list[str], list[pa.Field], list[str]]:
        doc = self.doc
        select, schema, group = [], [], []
        if doc.interval is not None:
            bucket = f"date_trunc('{doc.interval}', ts)"  # a Literal: one of four words
            select.append(f'{bucket} AS "time"')
            schema.append(pa.field("time", UTC_US))
            group.append(bucket)
        for i, ref in enumerate(doc.group_by):
            col = self.column(ref, ["group_by", i])
            if ref in [f.name for f in schema]:
                raise _bad(["group_by", i], f"{ref!r} is grouped by twice")
            select.append(f'{col.expr} AS "{ref}"')
            schema.append(pa.field(ref, _arrow(col)))
            group.append(col.expr)
        for i, agg in enumerate(doc.aggregations):
            if agg.name in [f.name for f in schema]:
                raise _bad(["aggregations", i, "as"], f"{agg.name!r} names another column")
            expr, kind = self._aggregate(agg, ["aggregations", i])
            select.append(f'{expr} AS "{agg.name}"')
            schema.append(pa.field(agg.name, kind))
        self.row_order = list(group)
        return select, schema, group

    def _aggregate(self, agg: Aggregate, loc: list[str | int]) -> tuple[str, pa.DataType]:
        if agg.field is None:
            return "count(*)", pa.int64()
        col = self.column(agg.field, [*loc, "field"])
        if agg.fn == "count":
            return f"count({col.expr})", pa.int64()
        if agg.fn == "count_distinct":
            return f"count(DISTINCT {col.expr})", pa.int64()
        if agg.fn in ("sum", "avg"):
            if col.type is not FieldType.NUMBER:
                raise _bad([*loc, "field"], f"{agg.fn} needs a number field, not {col.type}")
            return f"{agg.fn}({col.expr})", pa.float64()
        if col.type not in ORDERED:
            raise _bad([*loc, "field"], f"{agg.fn} needs a number, text or timestamp field")
        return f"{agg.fn}({col.expr})", _arrow(col)

    def _filter(self, f: Filter, loc: list[str | int]) -> str:
        col = self.column(f.field, [*loc, "field"])
        if f.op == "is_null":
            return f"{col.expr} IS NULL"
        if f.op == "not_null":
            return f"{col.expr} IS NOT NULL"
        if col.type is FieldType.OBJECT:
            raise _bad([*loc, "field"], "an object can only be tested with is_null / not_null")
        values = f.value if isinstance(f.value, list) else [f.value]
        bound = [self._value(col, v, [*loc, "value"]) for v in values]
        if f.op in ("in", "not_in"):
            found = f"coalesce(list_contains({self.p(bound)}, {col.expr}), false)"
            return found if f.op == "in" else f"NOT {found}"
        if f.op in (">", ">=", "<", "<=") and col.type not in (
            FieldType.NUMBER,
            FieldType.TIMESTAMP,
        ):
            raise _bad([*loc, "op"], f"{f.op} compares numbers or timestamps, not {col.type}")
        if f.op == "!=":  # a missing value is "not equal" too
            return f"({col.expr} IS NULL OR {col.expr} <> {self.p(bound[0])})"
        return f"coalesce({col.expr} {f.op} {self.p(bound[0])}, false)"

    def _value(self, col: Column, value: Any, loc: list[str | int]) -> object:
        if col.type is FieldType.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _bad(loc, f"{value!r} is not a number")
            return float(value)
        if col.type is FieldType.TIMESTAMP and col.envelope:
            try:
                when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise _bad(loc, f"{value!r} is not an ISO 8601 date-time") from None
            return _naive(when if when.tzinfo else when.replace(tzinfo=UTC))
        if col.type is FieldType.BOOLEAN:
            if not isinstance(value, bool):
                raise _bad(loc, f"{value!r} is not true or false")
            return "true" if value else "false"
        if not isinstance(value, str):
            raise _bad(loc, f"{value!r} is not text")
        return value

    def _order(self, outputs: list[str]) -> list[str]:
        if not self.doc.order_by:
            return self.row_order
        terms = []
        for i, o in enumerate(self.doc.order_by):
            if o.by not in outputs:
                raise _bad(["order_by", i, "by"], f"{o.by!r} is not an output column")
            terms.append(f'"{o.by}"' + (" DESC" if o.desc else ""))
        return terms


def _arrow(col: Column) -> pa.DataType:
    if col.envelope and col.type is FieldType.TIMESTAMP:
        return UTC_US
    return ARROW[col.type]


def _naive(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None)


def compile_export(doc: CustomExport, project_id: str, snapshot: ConfigSnapshot) -> Compiled:
    return Compiler(doc, project_id, snapshot).compile()
