"""GDPR erasure and retention in the embedded log: the subject's (or the expired) entries
become tombstones.

An entry is never removed (offsets are positions every sink keeps, and the next offset of a
partition is its largest + 1); its value is replaced by an empty blob, which readers skip.
The dedup keys of the erased events go too. ``secure_delete`` zeroes what a delete frees, but
not the copies a page rebuild leaves in a page's unallocated middle (seen: an erased id still
in such a gap), so the file is then rebuilt (VACUUM) and a TRUNCATE checkpoint empties the
write-ahead log. Runs on the writer thread (one writer): appends wait meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import orjson

from dataintel.model.retention import EventCutoffs
from dataintel.model.subject import Subject

TOMBSTONE = b""
NEEDLES_PER_SCAN = 50  # instr() terms per full scan of the log
_EXPIRED = (  # + the cutoffs' condition + ")"
    "SELECT p, o, json_extract(v, '$.event_id') FROM (SELECT \"partition\" AS p, "
    '"offset" AS o, CAST(value AS TEXT) AS v FROM log WHERE length(value) > 0) '
    "WHERE json_extract(v, '$.project_id') = ? AND ("
)


def erase_entries(conn: sqlite3.Connection, subject: Subject, below: Mapping[int, int]) -> int:
    """Tombstone the subject's entries at offsets below ``below`` (per partition)."""
    found: dict[tuple[int, int], str] = {}
    needles = sorted(orjson.dumps(value) for value in subject.values())
    for start in range(0, len(needles), NEEDLES_PER_SCAN):
        chunk = needles[start : start + NEEDLES_PER_SCAN]
        where = " OR ".join("instr(value, ?) > 0" for _ in chunk)
        rows = conn.execute(
            f'SELECT "partition", "offset", value FROM log WHERE {where}',  # noqa: S608 - ? only
            chunk,
        )
        for partition, offset, value in rows:
            if offset >= below.get(partition, 0) or not value:
                continue
            event = orjson.loads(value)
            if subject.owns(event):
                found[(partition, offset)] = f"{event['project_id']}/{event['event_id']}"
    return _tombstone(conn, found)


def expire_entries(
    conn: sqlite3.Connection, project_id: str, cutoffs: EventCutoffs, below: Mapping[int, int]
) -> int:
    """Tombstone the project's entries whose event time is before their event's cutoff, at
    offsets below ``below`` (per partition)."""
    params: list[object] = [project_id]

    def bind(value: str | datetime) -> str:
        params.append(_micros(value) if isinstance(value, datetime) else value)
        return "?"

    expired = cutoffs.condition("json_extract(v, '$.event')", "json_extract(v, '$.ts')", bind)
    if expired is None:
        return 0
    rows = conn.execute(_EXPIRED + expired + ")", params)
    found = {
        (partition, offset): f"{project_id}/{event_id}"
        for partition, offset, event_id in rows
        if offset < below.get(partition, 0)
    }
    return _tombstone(conn, found)


def _micros(when: datetime) -> int:
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _tombstone(conn: sqlite3.Connection, found: Mapping[tuple[int, int], str]) -> int:
    """Empty the values of the entries ``found`` (their dedup keys go too), then empty the
    write-ahead log."""
    if not found:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            'UPDATE log SET value = ? WHERE "partition" = ? AND "offset" = ?',
            [(TOMBSTONE, p, o) for p, o in found],
        )
        conn.executemany("DELETE FROM dedup WHERE dedup_key = ?", [(k,) for k in found.values()])
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise
    vacuum(conn)
    return len(found)


def vacuum(conn: sqlite3.Connection) -> None:
    """Rebuild the file (no stale bytes in any page or free page), then empty the WAL."""
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
