"""The embedded store's batch feature values: two plain tables beside the tiles.

``batch_runs`` holds, per (project, field), the stored run (its time, entity key and the
value of an entity it did not find); ``batch_values`` that run's value per entity. A run
replaces its field's rows in one transaction, so a reader sees one run or the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from dataintel.storage.online.port import BatchValue, BatchValues, EntityRef

SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_runs (
    project_id TEXT NOT NULL, field TEXT NOT NULL, entity_key TEXT NOT NULL,
    computed_at INTEGER NOT NULL, empty TEXT NOT NULL, PRIMARY KEY (project_id, field));
CREATE TABLE IF NOT EXISTS batch_values (
    project_id TEXT NOT NULL, field TEXT NOT NULL, entity_id TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (project_id, field, entity_id)) WITHOUT ROWID;
"""


def write(db: sqlite3.Connection, run: BatchValues) -> bool:
    """Inside the caller's write transaction."""
    stored = db.execute(
        "SELECT computed_at FROM batch_runs WHERE project_id = ? AND field = ?",
        (run.project_id, run.field),
    ).fetchone()
    if stored is not None and int(stored[0]) > run.computed_at:
        return False
    db.execute(
        "DELETE FROM batch_values WHERE project_id = ? AND field = ?", (run.project_id, run.field)
    )
    db.executemany(
        "INSERT INTO batch_values VALUES (?, ?, ?, ?)",
        [(run.project_id, run.field, e, _dump(v)) for e, v in run.values.items()],
    )
    db.execute(
        "INSERT INTO batch_runs VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, field) DO UPDATE "
        "SET entity_key = excluded.entity_key, computed_at = excluded.computed_at, "
        "empty = excluded.empty",
        (run.project_id, run.field, run.entity_key, run.computed_at, _dump(run.empty)),
    )
    return True


def read(
    db: sqlite3.Connection, refs: Sequence[EntityRef], fields: Sequence[str]
) -> list[dict[str, BatchValue]]:
    out: list[dict[str, BatchValue]] = [{} for _ in refs]
    by_project: dict[str, list[int]] = {}
    for i, ref in enumerate(refs):
        by_project.setdefault(ref.project_id, []).append(i)
    for project_id, indexes in by_project.items():
        for field in fields:
            run = db.execute(
                "SELECT entity_key, computed_at, empty FROM batch_runs "
                "WHERE project_id = ? AND field = ?",
                (project_id, field),
            ).fetchone()
            if run is None:
                continue
            key, at, empty = str(run[0]), int(run[1]), orjson.loads(run[2])
            ids = sorted({refs[i].entity_id for i in indexes if refs[i].entity_key == key})
            found = dict(
                db.execute(
                    "SELECT entity_id, value FROM batch_values WHERE project_id = ? AND field = ? "
                    "AND entity_id IN (SELECT value FROM json_each(?))",
                    (project_id, field, orjson.dumps(ids).decode()),
                ).fetchall()
            )
            for i in indexes:
                if refs[i].entity_key == key:
                    raw = found.get(refs[i].entity_id)
                    value = empty if raw is None else orjson.loads(raw)
                    out[i][field] = BatchValue(value, at)
    return out


def delete(db: sqlite3.Connection, refs: Sequence[EntityRef]) -> None:
    """Forget the entities' values (GDPR erasure), inside the caller's transaction."""
    db.executemany(
        "DELETE FROM batch_values WHERE project_id = ? AND entity_id = ? AND field IN "
        "(SELECT field FROM batch_runs WHERE project_id = ? AND entity_key = ?)",
        [(r.project_id, r.entity_id, r.project_id, r.entity_key) for r in refs],
    )


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()
