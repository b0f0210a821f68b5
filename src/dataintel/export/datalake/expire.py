"""Retention in the data lake: a project's rows past their event's cutoff leave the lake.

Files are partitioned by event hour, so a file whose whole hour lies before every cutoff is
dropped without being read; a file whose hour starts before the latest cutoff is read, and
rewritten without its expired rows when it holds any (erase.rewrite: new file, marker swap,
old file deleted); later files are not touched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from dataintel.export.datalake.committed import markers, read_file
from dataintel.export.datalake.erase import REWRITES, rewrite, sweep_rewrite_leftovers
from dataintel.export.datalake.layout import DataFile
from dataintel.model.retention import EventCutoffs
from dataintel.storage.blob.port import BlobStore

HOUR = timedelta(hours=1)
_TIME = pa.timestamp("us", tz="UTC")


def expire_events(store: BlobStore, project_id: str, cutoffs: EventCutoffs) -> int:
    """Remove the project's expired rows from the lake; returns the files rewritten or
    dropped."""
    latest = cutoffs.latest()
    if latest is None:
        return 0
    everywhere = cutoffs.earliest_everywhere()
    changed = 0
    with REWRITES:
        sweep_rewrite_leftovers(store)
        for marker in markers(store):
            current = marker
            for f in marker.files:
                start = _hour(f)
                if f.project_id != project_id or start >= latest:
                    continue
                if everywhere is not None and start + HOUR <= everywhere:
                    current = rewrite(store, current, f, None)  # the whole hour expired
                    changed += 1
                    continue
                table = read_file(store, f.key)
                hit = expired_rows(table, cutoffs)
                if pc.any(hit).as_py():
                    current = rewrite(store, current, f, table.filter(pc.invert(hit)))
                    changed += 1
    return changed


def expired_rows(table: pa.Table, cutoffs: EventCutoffs) -> pa.ChunkedArray:
    """Per row of an exported table (``event``, ``timestamp``): whether it has expired."""
    event, ts = table.column("event"), table.column("timestamp")
    hit = pc.equal(pa.chunked_array([pa.repeat(False, table.num_rows)]), True)
    for name, cutoff in cutoffs.by_event.items():
        if cutoff is not None:
            older = pc.less(ts, pa.scalar(cutoff, _TIME))
            hit = pc.or_(hit, pc.and_(pc.equal(event, name), older))
    if cutoffs.default is not None:
        named = pa.array(sorted(cutoffs.by_event), pa.string())
        others = pc.invert(pc.is_in(event, value_set=named))
        hit = pc.or_(hit, pc.and_(others, pc.less(ts, pa.scalar(cutoffs.default, _TIME))))
    return pc.fill_null(hit, False)


def _hour(f: DataFile) -> datetime:
    return datetime.strptime(f.hour, "%Y-%m-%dT%H").replace(tzinfo=UTC)
