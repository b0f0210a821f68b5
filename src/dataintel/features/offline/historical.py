"""Point-in-time training sets (POST /v1/features/historical), computed inside the engine.

Each label row (entity id, timestamp t) gets every requested value as of its t, exactly as
the online path would have served it at t (same windows, same empty-window rules: see
``offline``). The rows are lent to the analytics store as an Arrow table (row number,
entity, t and the start of every distinct window, computed here in exact integers) and ONE
query per chunk of ``CHUNK_ROWS`` rows range-joins them to the events on (entity,
``ts ≤ t``) and aggregates per row (``offline_query.labels_query``); no event reaches Python.
The result streams back in input order in batches of ``BATCH_ROWS``, is joined to the
input columns and encoded batch by batch, so memory stays bounded by a chunk.

Value columns: COUNT / COUNT_DISTINCT int64, SUM / AVG / MIN / MAX float64, FIRST / LAST the
field's value: a string for string fields and ids; for other fields the JSON value in JSON
output, its JSON text in CSV, and in Parquet a float64 (number fields), a bool (boolean
fields) or the JSON text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dataintel.config.deployments.active import ActiveConfig
from dataintel.errors import InvalidInput
from dataintel.export import formats
from dataintel.features.batch.historical import as_of, select_batch
from dataintel.features.offline.historical_input import TIME
from dataintel.features.offline.query import OfflinePlan, labels_query
from dataintel.features.offline.schemas import ENTITY_ID, TIMESTAMP, HistoricalFormat
from dataintel.features.offline.sql import Selected
from dataintel.features.offline.sql import select_features as select
from dataintel.features.online.plans import field_type
from dataintel.model.aggregations import Aggregation
from dataintel.model.batch import BatchFeatureSpec
from dataintel.model.fields import FieldType
from dataintel.model.snapshot import FeatureSpec
from dataintel.model.tiles import window_specs
from dataintel.storage.analytics.port import AnalyticsStore

CHUNK_ROWS = 100_000
BATCH_ROWS = 10_000
MEDIA_TYPES = {
    HistoricalFormat.JSON: "application/json",
    HistoricalFormat.CSV: formats.MEDIA_TYPES[formats.ExportFormat.CSV],
    HistoricalFormat.PARQUET: formats.MEDIA_TYPES[formats.ExportFormat.PARQUET],
}
_COUNTS = frozenset({Aggregation.COUNT, Aggregation.COUNT_DISTINCT})
_FLOATS = frozenset({Aggregation.SUM, Aggregation.AVG, Aggregation.MIN, Aggregation.MAX})
Loc = list[str | int]


@dataclass(frozen=True, slots=True)
class ValueColumn:
    name: str  # <feature>_<window>
    aggregation: Aggregation
    ref: str  # "<i>_<j>": the query's columns n<ref>, v<ref>
    kind: str  # int | float | text | number | bool | json

    def arrow_type(self, fmt: HistoricalFormat) -> pa.DataType:
        if self.kind == "int":
            return pa.int64()
        if self.kind == "float" or (self.kind == "number" and fmt is HistoricalFormat.PARQUET):
            return pa.float64()
        if self.kind == "bool" and fmt is HistoricalFormat.PARQUET:
            return pa.bool_()
        return pa.string()


@dataclass(frozen=True, slots=True)
class ValuePlan:
    """The values to compute for label rows, and how to write them."""

    entity_key: str
    specs: list[FeatureSpec]
    columns: list[ValueColumn]
    offline: OfflinePlan
    fmt: HistoricalFormat
    batch: list[BatchFeatureSpec] = field(default_factory=list)  # as of t: their JSON text

    def schema(self, labels: pa.Schema) -> pa.Schema:
        return pa.schema(
            [
                *labels,
                *(pa.field(c.name, c.arrow_type(self.fmt)) for c in self.columns),
                *(pa.field(b.name, pa.string()) for b in self.batch),
            ]
        )

    def encode(self, stream: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[bytes]:
        if self.fmt is HistoricalFormat.CSV:
            return formats.csv(stream)
        if self.fmt is HistoricalFormat.PARQUET:
            return formats.parquet(stream, schema)
        header = {
            "entity_key": self.entity_key,
            "values": [c.name for c in self.columns] + [b.name for b in self.batch],
            "versions": {s.name: s.version for s in self.specs}
            | {b.name: b.version for b in self.batch},
        }
        fragments = {c.name for c in self.columns if c.kind in _JSON_KINDS}
        return _json(stream, header, fragments | {b.name for b in self.batch})


@dataclass(frozen=True, slots=True)
class TrainingSet:
    media_type: str
    body: Iterator[bytes]
    rows: int


def resolve_features(
    config: ActiveConfig, entity_key: str, names: Sequence[str] | None, loc: Loc
) -> list[FeatureSpec]:
    """The deployed features to compute: all enabled aggregation features of ``entity_key``,
    or those ``names`` picks (a feature name: every window; a value name: that window)."""
    usable = [
        f
        for f in config.snapshot.features
        if f.enabled and f.entity_key == entity_key and not getattr(f, "expression", None)
    ]
    if names is None:
        if not usable:
            raise InvalidInput.field(
                [*loc[:-1], "entity_key"],
                f"no enabled feature of the deployed config reads entity key '{entity_key}'",
            )
        return usable
    by_name = {f.name: f for f in usable}
    by_value = {
        w.value_name: (f, w.window) for f in usable for w in window_specs(f.name, f.windows)
    }
    chosen: dict[str, set[str]] = {}
    for i, name in enumerate(names):
        if name in by_name:
            chosen.setdefault(name, set()).update(by_name[name].windows)
        elif name in by_value:
            spec, window = by_value[name]
            chosen.setdefault(spec.name, set()).add(window)
        else:
            raise InvalidInput.field(
                [*loc, i],
                f"'{name}' is no enabled feature or value of entity key '{entity_key}' in "
                "the deployed config",
            )
    return [
        by_name[n].model_copy(update={"windows": [w for w in by_name[n].windows if w in ws]})
        for n, ws in chosen.items()
    ]


def _kind(config: ActiveConfig, sel: Selected) -> str:
    if sel.aggregation in _COUNTS:
        return "int"
    if sel.timestamp:
        return "instant"
    if sel.aggregation in _FLOATS:
        return "float"
    if sel.text_value:
        return "text"
    declared = _declared(config, sel.spec)
    if declared is FieldType.NUMBER:
        return "number"
    return "bool" if declared is FieldType.BOOLEAN else "json"


def _declared(config: ActiveConfig, spec: FeatureSpec) -> FieldType | None:
    return field_type(config.snapshot, spec)


class HistoricalService:
    def __init__(self, analytics: AnalyticsStore, config: ActiveConfig) -> None:
        self.analytics = analytics
        self.config = config

    def training_set(
        self,
        entity_key: str,
        names: Sequence[str] | None,
        labels: pa.Table,
        fmt: HistoricalFormat,
        source: str = "rows",
    ) -> TrainingSet:
        """``labels`` (checked by ``historical_input``) with every requested value. The first
        batch is computed before returning, so a failing query is an error, not a cut body."""
        plan = self.plan(entity_key, names, fmt, ["body", "features"])
        _check_columns(labels, [*plan.columns, *plan.batch], fmt, source)
        schema = plan.schema(labels.schema)
        batches = self.rows(labels, plan, schema)
        first = next(batches, None)
        stream = chain([] if first is None else [first], batches)
        return TrainingSet(MEDIA_TYPES[fmt], plan.encode(stream, schema), labels.num_rows)

    def plan(
        self, entity_key: str, names: Sequence[str] | None, fmt: HistoricalFormat, loc: Loc
    ) -> ValuePlan:
        """What to compute for ``names`` of ``entity_key`` (an unknown name: 422 at ``loc``)."""
        batch, rest = select_batch(self.config.snapshot.batch, entity_key, names)
        try:
            specs = resolve_features(self.config, entity_key, rest, loc)
        except InvalidInput:
            if rest is not None or not batch:
                raise
            specs = []  # only batch features read this entity key
        selected, sources = select(specs, entity_key, lambda s: _declared(self.config, s))
        columns = [
            ValueColumn(w.value_name, sel.aggregation, f"{i}_{j}", _kind(self.config, sel))
            for i, sel in enumerate(selected)
            for j, w in enumerate(sel.windows)
        ]
        offline = OfflinePlan(selected, sources, self.analytics.dialect)
        return ValuePlan(entity_key, specs, columns, offline, fmt, batch)

    def rows(
        self, labels: pa.Table, plan: ValuePlan, schema: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        """``labels`` with their values, in input order, batch by batch."""
        if not plan.batch:
            return self._batches(labels, plan.offline, plan.columns, schema, plan.fmt)
        return self._with_batch(labels, plan, schema)

    def _with_batch(
        self, labels: pa.Table, plan: ValuePlan, schema: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        """The rows with their real-time values (if any), then the batch values as of t."""
        head = pa.schema(list(schema)[: len(schema) - len(plan.batch)])
        for begin in range(0, labels.num_rows, CHUNK_ROWS):
            chunk = labels.slice(begin, CHUNK_ROWS)
            entities = chunk.column(ENTITY_ID).combine_chunks()
            times = chunk.column(TIMESTAMP).combine_chunks()
            extra = [
                as_of(self.analytics, self.config.project_id, b, entities, times)
                for b in plan.batch
            ]
            if plan.specs:
                parts = self._batches(chunk, plan.offline, plan.columns, head, plan.fmt)
            else:
                parts = iter(chunk.combine_chunks().to_batches(BATCH_ROWS))
            done = 0
            for part in parts:
                n = part.num_rows
                arrays = [*part.columns, *(e.slice(done, n) for e in extra)]
                done += n
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _batches(
        self,
        labels: pa.Table,
        plan: OfflinePlan,
        columns: Sequence[ValueColumn],
        schema: pa.Schema,
        fmt: HistoricalFormat,
    ) -> Iterator[pa.RecordBatch]:
        """Output batches in input order: a query per chunk, streamed in batches."""
        for begin in range(0, labels.num_rows, CHUNK_ROWS):
            chunk = labels.slice(begin, CHUNK_ROWS)
            lent, t_range = _lent(chunk, plan)
            sql, params = labels_query(plan, self.config.project_id, t_range)
            done = 0
            for batch in self.analytics.sql_batches(sql, params, {"lab": lent}, BATCH_ROWS):
                rows = batch.column(0)
                if rows[0].as_py() != done or rows[len(rows) - 1].as_py() != done + len(rows) - 1:
                    raise RuntimeError("the engine returned label rows out of order")
                values = [_decode(batch, c, c.arrow_type(fmt)) for c in columns]
                inputs = chunk.slice(done, batch.num_rows)
                done += batch.num_rows
                table = pa.Table.from_arrays([*inputs.columns, *values], schema=schema)
                yield from table.combine_chunks().to_batches()
            if done != chunk.num_rows:
                raise RuntimeError("the engine returned fewer label rows than it was lent")


TIME_US = pa.timestamp("us", tz="UTC")
_JSON_KINDS = frozenset({"number", "bool", "json"})


def _check_columns(
    labels: pa.Table,
    columns: Sequence[ValueColumn | BatchFeatureSpec],
    fmt: HistoricalFormat,
    source: str,
) -> None:
    taken = set(labels.column_names)
    for c in columns:
        if c.name in taken:
            raise InvalidInput.field(
                ["body", source],
                f"input column '{c.name}' has the name of a requested value: rename it",
            )
    if fmt is HistoricalFormat.CSV:
        for f in labels.schema:
            if pa.types.is_nested(f.type):
                raise InvalidInput.field(
                    ["body", "format"], f"CSV cannot hold the nested column '{f.name}'"
                )


def _lent(chunk: pa.Table, plan: OfflinePlan) -> tuple[pa.Table, tuple[int, int]]:
    """The label rows as the engine sees them (``l_row``, ``l_entity``, ``l_t``, ``l_s<m>``:
    the window starts in band order, in exact integers) and (earliest start, latest t)."""
    t = np.asarray(chunk.column(TIMESTAMP).cast(pa.int64()).to_numpy(), dtype=np.int64)
    arrays: list[pa.Array] = [
        pa.array(np.arange(chunk.num_rows, dtype=np.int64)),
        chunk.column(ENTITY_ID).combine_chunks(),
        chunk.column(TIMESTAMP).combine_chunks(),
    ]
    names = ["l_row", "l_entity", "l_t"]
    start = t
    for m, (span, g) in enumerate(plan.spans):
        start = ((t - span) // g) * g
        arrays.append(pa.array(start, pa.int64()).cast(TIME))
        names.append(f"l_s{m}")
    fields = [pa.field(n, a.type, nullable=False) for n, a in zip(names, arrays, strict=True)]
    lent = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    return lent, (int(start.min()), int(t.max()))


def _decode(batch: pa.RecordBatch, c: ValueColumn, kind: pa.DataType) -> pa.Array:
    """One value column of a result batch, with the empty-window rules applied."""
    n = pc.fill_null(batch.column(f"n{c.ref}"), 0).cast(pa.int64())
    if c.aggregation in _COUNTS:
        return n
    has = pc.greater(n, 0)
    value = batch.column(f"v{c.ref}")
    if c.aggregation is Aggregation.SUM:
        return pc.if_else(has, pc.fill_null(value.cast(pa.float64()), 0.0), 0.0)
    if c.aggregation is Aggregation.AVG:
        value = pc.divide(value.cast(pa.float64()), n.cast(pa.float64()))
    if c.kind == "instant":  # µs → ISO-8601 text with microseconds, as served online
        moments = pc.round(value.cast(pa.float64())).cast(pa.int64()).cast(TIME_US)
        text = pc.strftime(moments, format="%Y-%m-%dT%H:%M:%SZ")
        return pc.if_else(has, text, pa.scalar(None, pa.string()))
    if c.aggregation in _FLOATS:
        return pc.if_else(has, value.cast(pa.float64()), pa.scalar(None, pa.float64()))
    text = pc.if_else(has, value.cast(pa.string()), pa.scalar(None, pa.string()))
    if kind == pa.float64():
        return text.cast(pa.float64())
    if kind == pa.bool_():
        return pc.equal(text, "true")
    return text


def _json(
    batches: Iterator[pa.RecordBatch], header: dict[str, Any], fragments: set[str]
) -> Iterator[bytes]:
    """``{"entity_key", "values", "versions", "rows": [...]}``, a batch per chunk; values that
    are JSON text are written as the JSON they are."""
    options = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
    yield orjson.dumps(header)[:-1] + b',"rows":['
    sep = b""
    for batch in batches:
        names = batch.schema.names
        cols = []
        for name, column in zip(names, batch.columns, strict=True):
            values = column.to_pylist()
            if name in fragments:
                values = [None if v is None else orjson.Fragment(v) for v in values]
            cols.append(values)
        rows = [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]
        chunk = orjson.dumps(rows, option=options, default=str)[1:-1]
        if chunk:
            yield sep + chunk
            sep = b","
    yield b"]}"
