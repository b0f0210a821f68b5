"""Erasing a data subject from the data lake (the GDPR eraser calls ``erase_subject``).

Each committed file of the project holding a row of one of the users or carts is rewritten
without those rows under a new key (``.r<n>``), the marker that lists it is replaced by one
listing the new file (an atomic PUT: the swap), then the old file is deleted. A crash
between these steps leaves an unlisted file (the new one, or the old one): invisible to
readers, deleted by the next ``erase_subject``. One rewriter at a time: two concurrent
rewrites of the same marker could lose one of the swaps, so within a process the GDPR eraser
and retention (expire.py) take ``REWRITES``; across processes the GDPR queue runs one request
at a time and retention one project at a time (both leased).
"""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.compute as pc
import structlog

from dataintel.export.datalake.committed import markers, read_file, unlisted_files
from dataintel.export.datalake.layout import DataFile, Marker, rewrite_key
from dataintel.export.datalake.writer import parquet_bytes
from dataintel.storage.blob.port import BlobStore

log = structlog.get_logger("dataintel.datalake")
REWRITES = threading.Lock()  # one rewriter of markers at a time in this process


def erase_subject(
    store: BlobStore,
    project_id: str,
    user_ids: set[str],
    cart_ids: set[str],
    session_ids: set[str] | None = None,
) -> int:
    """Remove every row of ``project_id`` whose user_id is in ``user_ids``, cart_id in
    ``cart_ids`` or session_id in ``session_ids`` from the lake; returns the number of files
    rewritten (or dropped, when no row was left)."""
    sessions = session_ids or set()
    with REWRITES:
        sweep_rewrite_leftovers(store)
        if not user_ids and not cart_ids and not sessions:
            return 0
        return _erase(store, project_id, user_ids, cart_ids, sessions)


def _erase(
    store: BlobStore, project_id: str, user_ids: set[str], cart_ids: set[str], sessions: set[str]
) -> int:
    rewritten = 0
    for marker in markers(store):
        current = marker
        for f in marker.files:
            if f.project_id != project_id:
                continue
            table = read_file(store, f.key)
            hit = _subject_rows(table, user_ids, cart_ids, sessions)
            if not pc.any(hit).as_py():
                continue
            current = rewrite(store, current, f, table.filter(pc.invert(hit)))
            rewritten += 1
    return rewritten


def _subject_rows(
    table: pa.Table, user_ids: set[str], cart_ids: set[str], session_ids: set[str]
) -> pa.ChunkedArray:
    hit: pa.ChunkedArray | None = None
    for column, ids in (("user_id", user_ids), ("cart_id", cart_ids), ("session_id", session_ids)):
        found = pc.is_in(table.column(column), value_set=pa.array(sorted(ids), pa.string()))
        found = pc.fill_null(found, False)
        hit = found if hit is None else pc.or_(hit, found)
    assert hit is not None
    return hit


def rewrite(store: BlobStore, marker: Marker, old: DataFile, kept: pa.Table | None) -> Marker:
    """Replace the file ``old`` of ``marker`` by one holding ``kept`` (dropped when None or
    empty); returns the new marker. The caller holds ``REWRITES``."""
    new = None
    if kept is not None and kept.num_rows:
        new = DataFile(rewrite_key(old.key), old.project_id, old.hour, kept.num_rows)
        store.put(new.key, parquet_bytes(kept))
    swapped = marker.replacing(old.key, new)
    store.put(swapped.key, swapped.to_json())
    store.delete(old.key)
    log.info("data lake file rewritten", old=old.key, new=new and new.key)
    return swapped


def sweep_rewrite_leftovers(store: BlobStore) -> int:
    """Delete the unlisted files of committed ranges: what an interrupted rewrite left.
    (Unlisted files past a partition's last marker belong to a batch the exporter is
    writing: they are the exporter's to sweep.)"""
    orphans, done = unlisted_files(store)
    leftovers = [o for o in orphans if o.first < done.get(o.partition, 0)]
    for name in leftovers:
        store.delete(name.key)
    return len(leftovers)
