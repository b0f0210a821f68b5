"""Running a compiled custom export (export/custom_query.py): its rows as batches of the
compiled schema, or as a streamed body in an export format."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from dataintel.export import formats
from dataintel.export.custom_query import Compiled
from dataintel.export.formats import ExportFormat
from dataintel.export.service import STREAM_BATCH_ROWS, ExportStream, RowCount
from dataintel.storage.analytics.port import AnalyticsStore


def batches(store: AnalyticsStore, compiled: Compiled) -> Iterator[pa.RecordBatch]:
    """The result in the compiled schema, batch by batch (constant memory)."""
    for batch in store.sql_batches(compiled.sql, compiled.params, batch_rows=STREAM_BATCH_ROWS):
        table = pa.Table.from_batches([batch]).rename_columns(compiled.schema.names)
        yield from table.cast(compiled.schema).to_batches()


def stream(store: AnalyticsStore, compiled: Compiled, fmt: ExportFormat) -> ExportStream:
    sent = RowCount()
    rows = sent.count(batches(store, compiled))
    body = formats.encode(rows, fmt, compiled.schema)
    return ExportStream(body, formats.MEDIA_TYPES[fmt], None, sent)
