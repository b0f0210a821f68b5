"""Partial groups → per-entity updates: the form the backfill's in-memory fold takes (the
stores merge the columnar groups themselves). One ``EntityUpdate`` per (entity, partition),
one ``FeatureUpdate`` per field; each field's tiles of one (entity, partition, level) are
built by one comprehension over that run of rows, not by a Python step per (row, field)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from dataintel.model.aggregations import Aggregation
from dataintel.model.tiles import LEVELS, cutoffs
from dataintel.storage.online.port import (
    EntityRef,
    EntityUpdate,
    FeatureUpdate,
    PartialGroup,
    StateField,
)

Runs = tuple[int, int, list[tuple[str, int, int]]]


def to_updates(groups: Sequence[PartialGroup]) -> list[EntityUpdate]:
    updates: dict[tuple[EntityRef, int], EntityUpdate] = {}
    for group in groups:
        _reshape(group, updates)
    return list(updates.values())


def _runs(entities: list[Any], partitions: list[int], levels: list[int]) -> list[Runs]:
    """Row ranges of each (entity, partition) (rows are sorted by entity, partition, level,
    tile), each with its level segments: (start, end, [(level name, start, end), ...])."""
    out: list[Runs] = []
    n = len(entities)
    a = 0
    while a < n:
        entity, partition = entities[a], partitions[a]
        segments: list[tuple[str, int, int]] = []
        s = b = a
        while b < n and entities[b] == entity and partitions[b] == partition:
            if levels[b] != levels[s]:
                segments.append((LEVELS[levels[s]], s, b))
                s = b
            b += 1
        segments.append((LEVELS[levels[s]], s, b))
        out.append((a, b, segments))
        a = b
    return out


def _reshape(group: PartialGroup, updates: dict[tuple[EntityRef, int], EntityUpdate]) -> None:
    table = group.table
    entities, partitions, levels, tiles, los, his, lasts = (
        table[name].to_pylist()
        for name in ("entity", "log_partition", "level", "tile", "lo", "hi", "last_t")
    )
    fields = group.fields
    states = [state_column(i, f, table) for i, f in enumerate(fields)]
    never_none = [f.aggregation is Aggregation.COUNT for f in fields]
    cuts = [cutoffs(f.keep, group.now_us) for f in fields]
    for a, b, segments in _runs(entities, partitions, levels):
        ref = EntityRef(group.project_id, group.entity_key, str(entities[a]))
        partition = partitions[a]
        lo, hi, last = min(los[a:b]), max(his[a:b]), max(lasts[a:b])
        update = updates.get((ref, partition))
        if update is None:
            update = updates[(ref, partition)] = EntityUpdate(ref, partition, lo, hi, {})
        else:
            update.first_offset = min(update.first_offset, lo)
            update.last_offset = max(update.last_offset, hi)
        features = update.features
        for i, spec in enumerate(fields):
            column = states[i]
            found: dict[str, dict[int, Any]] = {}
            for level, s, e in segments:
                pairs = zip(tiles[s:e], column[s:e], strict=True)
                kept = dict(pairs) if never_none[i] else {t: v for t, v in pairs if v is not None}
                if kept:
                    found[level] = kept
            features[spec.name] = FeatureUpdate(
                spec.aggregation, found, last, cuts[i], spec.lifetime
            )


def state_column(i: int, spec: StateField, table: Any) -> list[Any]:
    """Field ``i``'s tile state on every row, in the blob's form (None: no events)."""
    agg = spec.aggregation
    values: list[Any] = table[f"a{i}"].to_pylist()
    if agg is Aggregation.AVG:
        counts = table[f"b{i}"].to_pylist()
        return [[v, n] if n else None for v, n in zip(values, counts, strict=True)]
    if agg in (Aggregation.FIRST, Aggregation.LAST):
        ids, docs = table[f"b{i}"].to_pylist(), table[f"c{i}"].to_pylist()
        loads = orjson.loads
        return [
            None if t is None else [t, e, loads(d)]
            for t, e, d in zip(values, ids, docs, strict=True)
        ]
    if agg in (Aggregation.COUNT, Aggregation.COUNT_DISTINCT):
        return [v or None for v in values]
    return list(values)
