"""Prediction export: every ``prediction`` event of the project with its outcome, streamed.

A prediction's outcome is read like model performance reads it (docs/analytics-revenue.md):
``purchased`` when its cart has a purchase (the project's ``purchase_event``) strictly after
the prediction and at most the horizon later — then ``purchased_at``, ``order_id`` and
``revenue`` are those of the first such purchase (ties: the smallest event id) —,
``pending`` when not (yet) and the horizon has not elapsed at the current minute, else
``not_purchased``. A prediction without a cart can have no outcome: ``not_purchased`` once
its horizon elapsed.

Rows come out ordered by (timestamp, event_id) and resume by cursor as the event export
does; the SQL is written once (DuckDB dialect) and transpiled for ClickHouse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from dataintel.export import formats
from dataintel.export.formats import ExportFormat
from dataintel.export.service import (
    STREAM_BATCH_ROWS,
    ExportStream,
    RowCount,
    format_cursor,
    parse_cursor,
)
from dataintel.model.platform import PREDICTION_EVENT
from dataintel.storage.analytics.port import AnalyticsStore
from dataintel.storage.analytics.queries import from_micros
from dataintel.storage.analytics.sql_terms import Params, micros, number_field, text_field

PREDICTIONS_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("user_id", pa.string()),
        ("cart_id", pa.string()),
        ("model_version", pa.string()),
        ("probability", pa.float64()),
        ("confidence", pa.float64()),
        ("recommended_action", pa.string()),
        ("outcome", pa.string()),
        ("purchased_at", pa.timestamp("us", tz="UTC")),
        ("order_id", pa.string()),
        ("revenue", pa.float64()),
    ]
)
_TIMES = ("timestamp", "purchased_at")


@dataclass(frozen=True, slots=True)
class PredictionQuery:
    project_id: str
    start_us: int
    end_us: int
    horizon_us: int
    now_us: int
    purchase_event: str
    revenue_field: str
    model_versions: tuple[str, ...] = ()
    cursor: str | None = None
    limit: int | None = None


def predictions_sql(q: PredictionQuery) -> tuple[str, list[object]]:
    p = Params()
    project = p(q.project_id)
    only = (
        f"AND list_contains({p(list(q.model_versions))}, {text_field('model_version')})"
        if q.model_versions
        else ""
    )
    after = ""
    if q.cursor is not None:
        at_us, event_id = parse_cursor(q.cursor)
        after = (
            f"AND ({micros('ts')} > {p(at_us)} "
            f"OR ({micros('ts')} = {p(at_us)} AND event_id > {p(event_id)}))"
        )
    horizon = p(q.horizon_us)
    limit = f"LIMIT {int(q.limit) + 1}" if q.limit else ""
    text = f"""
    WITH preds AS (
        SELECT event_id, user_id, cart_id, {micros("ts")} AS p_us,
               {text_field("model_version")} AS model_version,
               {number_field("probability")} AS probability,
               {number_field("confidence")} AS confidence,
               {text_field("recommended_action")} AS recommended_action
        FROM events
        WHERE project_id = {project} AND event = {p(PREDICTION_EVENT)}
          AND ts >= {p(from_micros(q.start_us))} AND ts < {p(from_micros(q.end_us))}
          {only} {after}
    ),
    buys AS (
        SELECT event_id AS b_id, cart_id, {micros("ts")} AS b_us,
               {text_field("order_id")} AS order_id,
               {number_field(q.revenue_field)} AS revenue
        FROM events
        WHERE project_id = {project} AND event = {p(q.purchase_event)}
          AND cart_id IS NOT NULL AND ts > {p(from_micros(q.start_us))}
          AND ts <= {p(from_micros(q.end_us + q.horizon_us))}
    ),
    firsts AS (
        SELECT pr.event_id AS pid,
               min(CASE WHEN b.b_us > pr.p_us AND b.b_us - pr.p_us <= {horizon}
                   THEN b.b_us END) AS first_us
        FROM preds AS pr JOIN buys AS b ON b.cart_id = pr.cart_id
        GROUP BY pr.event_id
    ),
    winners AS (
        SELECT f.pid AS pid, min(b.b_id) AS b_id
        FROM firsts AS f
        JOIN preds AS pr ON pr.event_id = f.pid
        JOIN buys AS b ON b.cart_id = pr.cart_id AND b.b_us = f.first_us
        GROUP BY f.pid
    )
    SELECT pr.event_id AS event_id, pr.p_us AS t_us, pr.user_id AS user_id,
           pr.cart_id AS cart_id, pr.model_version AS model_version,
           pr.probability AS probability, pr.confidence AS confidence,
           pr.recommended_action AS recommended_action,
           CASE WHEN w.b_id IS NOT NULL THEN 'purchased'
                WHEN pr.p_us + {horizon} > {p(q.now_us)} THEN 'pending'
                ELSE 'not_purchased' END AS outcome,
           b.b_us AS purchased_us, b.order_id AS order_id, b.revenue AS revenue
    FROM preds AS pr
    LEFT JOIN winners AS w ON w.pid = pr.event_id
    LEFT JOIN buys AS b ON b.b_id = w.b_id
    ORDER BY t_us, event_id
    {limit}"""  # noqa: S608 - values are parameters; only fixed SQL enters the text
    return text, p.values


def shape(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A result batch in PREDICTIONS_SCHEMA (µs columns → UTC timestamps)."""
    columns = []
    for field in PREDICTIONS_SCHEMA:
        source = {"timestamp": "t_us", "purchased_at": "purchased_us"}.get(field.name, field.name)
        column = batch.column(source)
        if field.name in _TIMES:
            column = pc.cast(column.cast(pa.int64()), field.type)
        columns.append(column.cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=PREDICTIONS_SCHEMA)


def export_predictions(
    store: AnalyticsStore, q: PredictionQuery, fmt: ExportFormat
) -> ExportStream:
    text, params = predictions_sql(q)
    rows = (q.limit + 1) if q.limit else STREAM_BATCH_ROWS
    batches: Iterator[pa.RecordBatch] = (
        shape(b) for b in store.sql_batches(text, params, batch_rows=rows)
    )
    next_cursor = None
    if q.limit:
        page = next(batches, None)
        if page is not None and page.num_rows > q.limit:
            page = page.slice(0, q.limit)
            last = page.slice(q.limit - 1, 1).to_pylist()[0]
            next_cursor = format_cursor(last["timestamp"], last["event_id"])
        batches = iter([page] if page is not None and page.num_rows else [])
    sent = RowCount()
    body = formats.encode(sent.count(batches), fmt, PREDICTIONS_SCHEMA)
    return ExportStream(body, formats.MEDIA_TYPES[fmt], next_cursor, sent)
