"""Set-based writes of the embedded store (``sqlite_layout`` describes the tables).

``merge_group`` merges one ``PartialGroup`` into its family: one ``INSERT … ON CONFLICT DO
UPDATE`` executemany over the group's tile rows (one tuple per row, the fields as columns),
one for the distinct keys, one for the per-entity meta rows. ``fold`` moves expired day
tiles of a lifetime field into its base row; ``trim`` drops rows no field can use any more.
Everything runs inside the caller's write transaction.
"""

# Table and column names are generated from integers (t<id>, d<id>, s<k>, …), never from
# user text; values are always bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dataintel.model.aggregations import Aggregation
from dataintel.model.tiles import SIZES, TOP
from dataintel.storage.online.port import PartialGroup
from dataintel.storage.online.sqlite_layout import BASE, META, Column, Family, merge_sets

DAY = SIZES[TOP]


def partial_columns(i: int, agg: Aggregation) -> tuple[str, ...]:
    """The partial table's columns of field ``i`` that go to its state columns."""
    if agg is Aggregation.COUNT_DISTINCT:
        return ()
    if agg is Aggregation.AVG:
        return (f"a{i}", f"b{i}")
    if agg in (Aggregation.FIRST, Aggregation.LAST):
        return (f"a{i}", f"b{i}", f"c{i}")
    return (f"a{i}",)


def merge_group(db: sqlite3.Connection, family: Family, group: PartialGroup, now: float) -> None:
    table = group.table
    columns = [family.fields[f.name] for f in group.fields]
    key = ("upsert", tuple(f.name for f in group.fields))
    statement = family.sql.get(key)
    if statement is None:
        statement = family.sql[key] = _upsert(family, columns)
    names = [n for i, c in enumerate(columns) for n in partial_columns(i, c.spec.aggregation)]
    if names:
        cols = [table[n].to_pylist() for n in ("entity", "level", "tile", *names)]
        db.executemany(statement, zip(*cols, strict=True))
    for i, column in enumerate(columns):
        if column.spec.aggregation is Aggregation.COUNT_DISTINCT:
            _distinct(db, family, column.k, table, f"a{i}", "OR IGNORE")
    # One meta row per entity: last write (TTL), latest event time per field.
    lasts = table.group_by("entity").aggregate([("last_t", "max")])
    meta_key = ("meta", key[1])
    meta = family.sql.get(meta_key)
    if meta is None:
        ls = [f"l{c.k}" for c in columns]
        meta = family.sql[meta_key] = (
            f"INSERT INTO {family.tiles} (entity_id, level, tile, w, {', '.join(ls)}) "
            f"VALUES (?1, {META}, 0, ?3, {', '.join('?2' for _ in ls)}) "
            "ON CONFLICT (entity_id, level, tile) DO UPDATE SET w = excluded.w, "
            + ", ".join(
                f"{c} = CASE WHEN {c} IS NULL OR excluded.{c} > {c} THEN excluded.{c} ELSE {c} END"
                for c in ls
            )
        )
    entities = lasts["entity"].to_pylist()
    db.executemany(
        meta,
        zip(entities, lasts["last_t_max"].to_pylist(), [now] * len(entities), strict=True),
    )
    # Late day tiles under a lifetime base (or expired at once) go to the base now: the
    # lifetime value reads the base and the tiles from its end on.
    top = pc.equal(table["level"], TOP)
    for column in columns:
        spec = column.spec
        if not spec.lifetime:
            continue
        cut = group.now_us - spec.keep[TOP]
        late = pc.and_(top, pc.less_equal(table["tile"], cut - DAY))
        if pc.any(late).as_py():
            entities_late = pc.unique(table["entity"].filter(late)).to_pylist()
            fold(db, family, column, cut, entities_late)


def _upsert(family: Family, columns: Sequence[Column]) -> str:
    states = [n for c in columns for n in c.states]
    sets = [s for c in columns for s in merge_sets(c.spec.aggregation, c.states)]
    marks = ", ".join("?" for _ in range(3 + len(states)))
    return (
        f"INSERT INTO {family.tiles} (entity_id, level, tile, {', '.join(states)}) "
        f"VALUES ({marks}) ON CONFLICT (entity_id, level, tile) DO UPDATE SET {', '.join(sets)}"
    )


def _distinct(
    db: sqlite3.Connection, family: Family, k: int, table: pa.Table, name: str, verb: str
) -> None:
    lists = table[name]
    values = pc.list_flatten(lists)
    if len(values) == 0:
        return
    rows = pc.list_parent_indices(lists)
    cols = [pc.take(table[c], rows).to_pylist() for c in ("entity", "level", "tile")]
    db.executemany(
        f"INSERT {verb} INTO {family.distinct} VALUES (?, ?, ?, {k}, ?)",
        zip(*cols, values.to_pylist(), strict=True),
    )


# --- lifetime base and trimming -------------------------------------------------------------

_FOLD_TEMP = "CREATE TEMP TABLE IF NOT EXISTS fold_tiles (entity_id TEXT, tile INTEGER)"


def fold(
    db: sqlite3.Connection,
    family: Family,
    column: Column,
    cut: int,
    entities: Sequence[str] | None,
) -> None:
    """Merge the lifetime field's day tiles that ended by ``cut`` (or lie under its base)
    into its base row, move the base end (``e``) past them and clear them (set-based)."""
    k, agg, t = column.k, column.spec.aggregation, family.tiles
    db.execute(_FOLD_TEMP)
    db.execute("DELETE FROM temp.fold_tiles")
    scope, params = "", list[int | str]([cut])
    if entities is not None:
        scope = "AND x.entity_id IN (SELECT value FROM json_each(?))"
        params.append(orjson.dumps(list(entities)).decode())
    if agg is Aggregation.COUNT_DISTINCT:  # its tiles are rows of the distinct table
        source = f"(SELECT DISTINCT entity_id, level, tile FROM {family.distinct} WHERE col = {k})"
        has = "true"
    else:
        source, has = t, f"x.s{k} IS NOT NULL"
    db.execute(
        f"INSERT INTO temp.fold_tiles SELECT x.entity_id, x.tile FROM {source} x "
        f"LEFT JOIN {t} m ON m.entity_id = x.entity_id AND m.level = {META} AND m.tile = 0 "
        f"WHERE x.level = {TOP} AND (x.tile + {DAY} <= ? OR x.tile < m.e{k}) AND {has} {scope}",
        params,
    )
    if db.execute("SELECT count(*) FROM temp.fold_tiles").fetchone()[0] == 0:
        return
    joined = (
        f"FROM temp.fold_tiles f JOIN {t} x ON x.entity_id = f.entity_id "
        f"AND x.level = {TOP} AND x.tile = f.tile"
    )
    if agg is Aggregation.COUNT_DISTINCT:
        db.execute(
            f"INSERT OR IGNORE INTO {family.distinct} SELECT d.entity_id, {BASE}, 0, {k}, d.value "
            f"FROM temp.fold_tiles f JOIN {family.distinct} d ON d.entity_id = f.entity_id "
            f"AND d.level = {TOP} AND d.tile = f.tile AND d.col = {k}"
        )
        db.execute(
            f"DELETE FROM {family.distinct} WHERE col = {k} AND level = {TOP} "
            "AND (entity_id, tile) IN (SELECT entity_id, tile FROM temp.fold_tiles)"
        )
    else:
        cols = column.states
        sets = ", ".join(merge_sets(agg, cols))
        if agg in (Aggregation.FIRST, Aggregation.LAST):
            order = "" if agg is Aggregation.FIRST else " DESC"
            picked = ", ".join(f"x.{c}" for c in cols)
            source = (
                f"SELECT entity_id, {BASE}, 0, {', '.join(cols)} FROM (SELECT x.entity_id, "
                f"{picked}, row_number() OVER (PARTITION BY x.entity_id ORDER BY x.{cols[0]}"
                f"{order}, x.{cols[1]}{order}) AS r {joined}) WHERE r = 1"
            )
        else:
            fn = {Aggregation.MIN: "min", Aggregation.MAX: "max"}.get(agg, "sum")
            aggs = ", ".join(f"{fn}(x.{c})" for c in cols)
            source = f"SELECT x.entity_id, {BASE}, 0, {aggs} {joined} WHERE true GROUP BY 1"
        db.execute(
            f"INSERT INTO {t} (entity_id, level, tile, {', '.join(cols)}) {source} "
            f"ON CONFLICT (entity_id, level, tile) DO UPDATE SET {sets}"
        )
        db.execute(
            f"UPDATE {t} SET {', '.join(f'{c} = NULL' for c in cols)} WHERE level = {TOP} "
            "AND (entity_id, tile) IN (SELECT entity_id, tile FROM temp.fold_tiles)"
        )
    db.execute(
        f"UPDATE {t} SET e{k} = max(coalesce(e{k}, f.e), f.e) FROM (SELECT entity_id, "
        f"max(tile) + {DAY} AS e FROM temp.fold_tiles WHERE tile + {DAY} <= ? GROUP BY 1) f "
        f"WHERE {t}.entity_id = f.entity_id AND {t}.level = {META} AND {t}.tile = 0",
        (cut,),
    )


def trim(db: sqlite3.Connection, family: Family, now_us: int) -> None:
    """Fold every lifetime field's expired day tiles, then delete the tile rows (and
    distinct keys) that ended before the cut of every field of the family."""
    columns = list(family.fields.values())
    if not columns:
        return
    for column in columns:
        if column.spec.lifetime:
            fold(db, family, column, now_us - column.spec.keep[TOP], None)
    bounds = [now_us - max(c.spec.keep[level] for c in columns) for level in range(len(SIZES))]
    ends = " ".join(f"WHEN {lv} THEN tile + {size}" for lv, size in enumerate(SIZES))
    cuts = " ".join(f"WHEN {lv} THEN {b}" for lv, b in enumerate(bounds))
    expired = f"level BETWEEN 0 AND {TOP} AND (CASE level {ends} END) <= (CASE level {cuts} END)"
    db.execute(f"DELETE FROM {family.tiles} WHERE {expired}")
    db.execute(f"DELETE FROM {family.distinct} WHERE {expired}")


# --- reading an entity back as blobs ----------------------------------------------------------


def entity_blobs(
    family: Family,
    description: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    distinct: Sequence[tuple[int, int, int, str]],
) -> tuple[dict[str, dict[str, Any]], float | None]:
    """The blobs of every field of one entity from its rows (PK order), and its last write."""
    index = {d[0]: i for i, d in enumerate(description)}
    written: float | None = None
    meta: Sequence[Any] = ()
    for row in rows:
        if row[1] == META:
            meta, written = row, row[index["w"]]
            break
    fields = list(family.fields.items())  # a snapshot: the writer may add fields meanwhile
    keyed: dict[int, tuple[str, Column]] = {c.k: (n, c) for n, c in fields}
    blobs: dict[str, dict[str, Any]] = {}
    loads = orjson.loads
    for name, column in keyed.values():
        agg, k = column.spec.aggregation, column.k
        pos = [index.get(c) for c in column.states]
        if any(p is None for p in pos):
            continue
        tiles: dict[str, dict[int, Any]] = {}
        base: Any = None
        at_l, at_e = index.get(f"l{k}"), index.get(f"e{k}")
        meta_l = meta[at_l] if meta and at_l is not None else None
        meta_e = meta[at_e] if meta and at_e is not None else None
        for row in rows if agg is not Aggregation.COUNT_DISTINCT else ():
            level = row[1]
            if level == META:
                continue
            state = row[pos[0]]  # type: ignore[index]
            if state is None:
                continue
            if agg is Aggregation.AVG:
                n = row[pos[1]]  # type: ignore[index]
                if not n:
                    continue
                state = [state, n]
            elif agg in (Aggregation.FIRST, Aggregation.LAST):
                state = [state, row[pos[1]], loads(row[pos[2]])]  # type: ignore[index]
            if level == BASE:
                base = state
            else:
                tiles.setdefault(str(level), {})[row[2]] = state
        if agg is Aggregation.COUNT_DISTINCT:
            for level, tile, col, value in distinct:
                if col != k:
                    continue
                if level == BASE:
                    base = [value] if base is None else [*base, value]
                else:
                    tiles.setdefault(str(level), {}).setdefault(tile, []).append(value)
        if meta_l is None and not tiles and base is None:
            continue
        blobs[name] = {"t": tiles, "b": base, "e": meta_e, "l": meta_l}
    return blobs, written
