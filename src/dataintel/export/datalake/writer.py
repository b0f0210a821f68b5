"""One micro-batch of one log partition → Parquet files per (project, hour) → a commit
marker. The files are PUT first, the marker last: a crash before the marker leaves files no
marker lists (swept on the next start), never a partial commit."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from dataintel.export import formats
from dataintel.export.datalake.layout import DataFile, Marker, file_key, now_text
from dataintel.export.service import EXPORT_SCHEMA, shape
from dataintel.storage.analytics.decode import decode_entries
from dataintel.storage.blob.port import BlobStore
from dataintel.storage.eventlog.port import LogEntry


def parquet_bytes(table: pa.Table) -> bytes:
    """A table of EXPORT_SCHEMA as one Parquet file, as /v1/export/events writes it."""
    return b"".join(formats.parquet(table.to_batches(), EXPORT_SCHEMA))


def split_by_project_hour(entries: Sequence[LogEntry]) -> dict[tuple[str, str], pa.Table]:
    """The events of ``entries`` as exported, grouped by (project, event hour UTC), each
    group ordered by (timestamp, event_id)."""
    events = decode_entries(entries)
    hours = pc.strftime(pc.floor_temporal(events.column("ts"), unit="hour"), "%Y-%m-%dT%H")
    keys = pc.binary_join_element_wise(events.column("project_id"), hours, "/")
    groups: dict[tuple[str, str], pa.Table] = {}
    for key in pc.unique(keys).to_pylist():
        rows = events.filter(pc.equal(keys, key))
        batches = [shape(b) for b in rows.to_batches()]
        table = pa.Table.from_batches(batches, EXPORT_SCHEMA)
        project_id, _, hour = str(key).partition("/")
        groups[(project_id, hour)] = table.sort_by(
            [("timestamp", "ascending"), ("event_id", "ascending")]
        )
    return groups


def write_batch(store: BlobStore, partition: int, entries: Sequence[LogEntry]) -> Marker:
    """PUT the files of one batch (entries of ``partition``, in offset order), then its
    marker; returns the marker."""
    first, last = entries[0].offset, entries[-1].offset
    files = []
    for (project_id, hour), table in sorted(split_by_project_hour(entries).items()):
        key = file_key(project_id, hour, partition, first, last)
        store.put(key, parquet_bytes(table))
        files.append(DataFile(key, project_id, hour, table.num_rows))
    marker = Marker(partition, first, last, tuple(files), now_text())
    store.put(marker.key, marker.to_json())
    return marker
