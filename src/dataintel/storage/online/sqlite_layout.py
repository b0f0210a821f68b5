"""The embedded store's columnar layout: which table and columns hold a state field.

A *family* is one (project, entity key). Its tiles live in table ``t<id>``, one row per
(entity, level, tile start), one column per state value of each field, added by ``ALTER
TABLE … ADD COLUMN`` when a field first appears (``family_fields`` maps field → column
number ``k``):

- COUNT, SUM, MIN, MAX: ``s<k>``; AVG: ``s<k>`` (sum), ``n<k>`` (count);
  FIRST / LAST: ``s<k>`` (event time), ``i<k>`` (event id), ``v<k>`` (value, JSON text);
  COUNT_DISTINCT: no column, its keys are rows of ``d<id>`` (entity, level, tile, k, key);
- per entity, a *meta* row (level ``META``) holds the last write ``w`` (TTL), and per field
  ``l<k>`` (latest event time) and ``e<k>`` (end of the lifetime base); a *base* row (level
  ``BASE``) holds the lifetime base states in the state columns.

Rows are merged by ``merge_sets``: SQL expressions equal to ``tiles.merge`` (NULL = no
events), so a micro-batch is one ``INSERT … ON CONFLICT DO UPDATE`` executemany per group.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from dataintel.model.aggregations import Aggregation
from dataintel.storage.online.port import StateField

META = -1  # level of the per-entity meta row (tile 0)
BASE = 5  # level of the lifetime base row (tile 0)

SCHEMA = """
CREATE TABLE IF NOT EXISTS families (
    id INTEGER PRIMARY KEY, project_id TEXT NOT NULL, entity_key TEXT NOT NULL,
    UNIQUE (project_id, entity_key));
CREATE TABLE IF NOT EXISTS family_fields (
    family INTEGER NOT NULL, field TEXT NOT NULL, col INTEGER NOT NULL,
    aggregation TEXT NOT NULL, lifetime INTEGER NOT NULL, keep TEXT NOT NULL,
    PRIMARY KEY (family, field));
"""


def state_columns(k: int, agg: Aggregation) -> tuple[str, ...]:
    if agg is Aggregation.COUNT_DISTINCT:
        return ()
    if agg is Aggregation.AVG:
        return (f"s{k}", f"n{k}")
    if agg in (Aggregation.FIRST, Aggregation.LAST):
        return (f"s{k}", f"i{k}", f"v{k}")
    return (f"s{k}",)


def merge_sets(agg: Aggregation, cols: Sequence[str]) -> list[str]:
    """``SET`` clauses merging ``excluded`` (the new partial) into the stored row, as
    ``tiles.merge(agg, stored, partial)``; NULL is "no events" on either side."""

    def add(c: str) -> str:
        return (
            f"{c} = CASE WHEN excluded.{c} IS NULL THEN {c} WHEN {c} IS NULL THEN excluded.{c} "
            f"ELSE {c} + excluded.{c} END"
        )

    if agg is Aggregation.COUNT_DISTINCT:
        return []  # rows of the distinct table
    if agg in (Aggregation.COUNT, Aggregation.SUM, Aggregation.AVG):
        return [add(c) for c in cols]
    s = cols[0]
    if agg in (Aggregation.MIN, Aggregation.MAX):
        op = "<" if agg is Aggregation.MIN else ">"
        return [
            f"{s} = CASE WHEN excluded.{s} IS NOT NULL AND ({s} IS NULL OR excluded.{s} {op} {s})"
            f" THEN excluded.{s} ELSE {s} END"
        ]
    op = "<" if agg is Aggregation.FIRST else ">"  # FIRST / LAST: by (time, event id)
    i = cols[1]
    take = (
        f"excluded.{s} IS NOT NULL AND ({s} IS NULL OR "
        f"(excluded.{s}, excluded.{i}) {op} ({s}, {i}))"
    )
    return [f"{c} = CASE WHEN {take} THEN excluded.{c} ELSE {c} END" for c in cols]


@dataclass(frozen=True, slots=True)
class Column:
    """Where one field lives in its family's table."""

    k: int
    spec: StateField

    @property
    def states(self) -> tuple[str, ...]:
        return state_columns(self.k, self.spec.aggregation)


@dataclass(slots=True)
class Family:
    id: int
    project_id: str
    entity_key: str
    fields: dict[str, Column] = field(default_factory=dict)
    sql: dict[object, str] = field(default_factory=dict)  # statements by purpose

    @property
    def tiles(self) -> str:
        return f"t{self.id}"

    @property
    def distinct(self) -> str:
        return f"d{self.id}"


class Layout:
    """The families and their columns, as this process knows them (reloaded from the file
    when a name is missing: another process may have added it)."""

    def __init__(self) -> None:
        self._families: dict[tuple[str, str], Family] = {}

    def find(self, db: sqlite3.Connection, project_id: str, entity_key: str) -> Family | None:
        family = self._families.get((project_id, entity_key))
        if family is None:
            row = db.execute(
                "SELECT id FROM families WHERE project_id = ? AND entity_key = ?",
                (project_id, entity_key),
            ).fetchone()
            if row is None:
                return None
            family = self._families[(project_id, entity_key)] = Family(
                int(row[0]), project_id, entity_key
            )
            self.reload(db, family)
        return family

    def reload(self, db: sqlite3.Connection, family: Family) -> None:
        rows = db.execute(
            "SELECT field, col, aggregation, lifetime, keep FROM family_fields WHERE family = ?",
            (family.id,),
        ).fetchall()
        for name, k, agg, lifetime, keep in rows:
            if name not in family.fields:
                spec = StateField(name, Aggregation(agg), tuple(json.loads(keep)), bool(lifetime))
                family.fields[name] = Column(int(k), spec)

    def ensure(
        self, db: sqlite3.Connection, project_id: str, entity_key: str, specs: Sequence[StateField]
    ) -> Family:
        """The family with columns for ``specs`` (in the writer's transaction)."""
        family = self.find(db, project_id, entity_key)
        if family is None:
            cur = db.execute(
                "INSERT INTO families (project_id, entity_key) VALUES (?, ?)",
                (project_id, entity_key),
            )
            family = Family(int(cur.lastrowid or 0), project_id, entity_key)
            self._families[(project_id, entity_key)] = family
            db.execute(
                f"CREATE TABLE {family.tiles} (entity_id TEXT NOT NULL, level INTEGER NOT NULL, "
                "tile INTEGER NOT NULL, w REAL, PRIMARY KEY (entity_id, level, tile)) "
                "WITHOUT ROWID"
            )
            db.execute(
                f"CREATE TABLE {family.distinct} (entity_id TEXT NOT NULL, level INTEGER NOT NULL,"
                " tile INTEGER NOT NULL, col INTEGER NOT NULL, value TEXT NOT NULL, "
                "PRIMARY KEY (entity_id, level, tile, col, value)) WITHOUT ROWID"
            )
        if any(s.name not in family.fields for s in specs):
            self.reload(db, family)
        for spec in specs:
            known = family.fields.get(spec.name)
            if known is not None:
                if (known.spec.aggregation, known.spec.lifetime) != (
                    spec.aggregation,
                    spec.lifetime,
                ):
                    raise ValueError(f"state field {spec.name!r} changed its aggregation")
                continue
            k = 1 + max((c.k for c in family.fields.values()), default=-1)
            db.execute(
                "INSERT INTO family_fields VALUES (?, ?, ?, ?, ?, ?)",
                (family.id, spec.name, k, spec.aggregation.value, int(spec.lifetime),
                 json.dumps(list(spec.keep))),
            )  # fmt: skip
            for name in (*state_columns(k, spec.aggregation), f"l{k}", f"e{k}"):
                db.execute(f"ALTER TABLE {family.tiles} ADD COLUMN {name}")
            family.fields[spec.name] = Column(k, spec)
            family.sql.clear()
        return family

    def families(self, db: sqlite3.Connection) -> list[Family]:
        rows = db.execute("SELECT project_id, entity_key FROM families").fetchall()
        out = []
        for project_id, entity_key in rows:
            family = self.find(db, str(project_id), str(entity_key))
            if family is not None:
                out.append(family)
        return out

    def forget(self) -> None:
        """Drop what this process knows (another process changed the file's layout)."""
        self._families.clear()
