"""Reading the data lake the way every reader must: through the commit markers. A data file
that no marker lists (a batch written but not committed before a crash, or the old copy of
a file ``erase_subject`` rewrote) is not part of the lake, even while it still exists."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from dataintel.export.datalake.layout import (
    EVENTS,
    MARKERS,
    DataFile,
    FileName,
    Marker,
    marker_prefix,
    parse_file,
    parse_marker_key,
)
from dataintel.export.service import EXPORT_SCHEMA
from dataintel.storage.blob.port import BlobNotFound, BlobStore


def markers(store: BlobStore, partition: int | None = None) -> list[Marker]:
    """The commit markers (of one log partition), in (partition, offset) order."""
    prefix = MARKERS if partition is None else marker_prefix(partition)
    found = []
    for key in store.list(prefix):
        if key.endswith(".json"):
            try:
                found.append(Marker.from_json(store.get(key)))
            except BlobNotFound:  # deleted between the listing and the read
                continue
    return sorted(found, key=lambda m: (m.partition, m.first_offset))


def next_offsets(store: BlobStore, partitions: set[int]) -> dict[int, int]:
    """Per log partition, the first offset no marker covers: where the export resumes.
    Read from the markers' names alone (one listing, no object read)."""
    done = dict.fromkeys(partitions, 0)
    only = next(iter(partitions)) if len(partitions) == 1 else None
    for key in store.list(MARKERS if only is None else marker_prefix(only)):
        parsed = parse_marker_key(key)
        if parsed is not None and parsed[0] in done:
            done[parsed[0]] = max(done[parsed[0]], parsed[2] + 1)
    return done


def unlisted_files(store: BlobStore) -> tuple[list[FileName], dict[int, int]]:
    """Data files no marker lists (with their keys in ``FileName.key``), and each log
    partition's next offset: what the sweeps of the exporter and the eraser choose from."""
    listed = {f.key for m in markers(store) for f in m.files}
    done: dict[int, int] = {}
    for key in store.list(MARKERS):
        parsed = parse_marker_key(key)
        if parsed is not None:
            done[parsed[0]] = max(done.get(parsed[0], 0), parsed[2] + 1)
    orphans = []
    for key in store.list(EVENTS):
        name = parse_file(key)
        if name is not None and key not in listed:
            orphans.append(name)
    return orphans, done


def committed_files(store: BlobStore, project_id: str | None = None) -> list[DataFile]:
    """The files of the lake (of one project), each listed once, sorted by key."""
    files = {
        f.key: f
        for m in markers(store)
        for f in m.files
        if project_id is None or f.project_id == project_id
    }
    return [files[k] for k in sorted(files)]


def read_file(store: BlobStore, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(store.get(key)), schema=EXPORT_SCHEMA)


def read_events(store: BlobStore, project_id: str) -> pa.Table:
    """Every committed event of a project (EXPORT_SCHEMA; for tests and small projects:
    Spark, DuckDB or Athena read the listed files directly)."""
    tables = [read_file(store, f.key) for f in committed_files(store, project_id)]
    return pa.concat_tables(tables) if tables else EXPORT_SCHEMA.empty_table()


def iter_tables(store: BlobStore, files: list[DataFile]) -> Iterator[tuple[DataFile, pa.Table]]:
    for f in files:
        yield f, read_file(store, f.key)
