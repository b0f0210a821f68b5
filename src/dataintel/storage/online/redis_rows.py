"""Partial groups → the Redis apply script's arguments, one call per (entity, partition).

The group's table stays columnar until it is cut into row runs: each state column is turned
into a Python list once, the rows are zipped once (a tuple per tile row, made in C), and the
runs of each (entity, partition) are found by comparing neighbouring rows with Arrow
kernels. A call carries, per group the entity has rows in, the group's spec (packed once per
group, shared by all its entities) and the entity's slice of rows: no Python object per
(entity, feature); the script (``apply.lua``) merges each field's states in the rows' order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataintel.model.aggregations import Aggregation
from dataintel.model.tiles import cutoffs
from dataintel.storage.online.codec import pack
from dataintel.storage.online.port import EntityRef, PartialGroup, StateField


def state_columns(i: int, agg: Aggregation) -> tuple[str, ...]:
    """Field ``i``'s columns of the port's partial layout, in the script's order."""
    if agg is Aggregation.AVG:
        return (f"a{i}", f"b{i}")
    if agg in (Aggregation.FIRST, Aggregation.LAST):
        return (f"a{i}", f"b{i}", f"c{i}")
    return (f"a{i}",)


@dataclass(slots=True)
class EntityCall:
    """One script call: an entity's rows of one partition, from every group it is in."""

    ref: EntityRef
    partition: int
    lo: int
    hi: int
    args: list[bytes] = field(default_factory=list)  # (spec, rows) per group


def group_spec(group: PartialGroup) -> tuple[bytes, list[str]]:
    """The group's packed spec and the state columns a row carries after (level, tile)."""
    specs: list[list[object]] = []
    columns: list[str] = []
    for i, spec in enumerate(group.fields):
        specs.append(_field_spec(spec, 3 + len(columns), group.now_us))
        columns.extend(state_columns(i, spec.aggregation))
    return pack(specs), columns


def _field_spec(spec: StateField, first: int, now_us: int) -> list[object]:
    cuts = list(cutoffs(spec.keep, now_us))
    return [spec.name, spec.aggregation.value, first, cuts, spec.lifetime]


def runs(table: pa.Table) -> np.ndarray:
    """Start indexes of the runs of equal (entity, log partition), plus the row count (rows
    are sorted by entity, partition, level, tile)."""
    n = table.num_rows
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    entity, partition = table["entity"], table["log_partition"]
    changed = pc.or_(
        pc.not_equal(entity.slice(1), entity.slice(0, n - 1)),
        pc.not_equal(partition.slice(1), partition.slice(0, n - 1)),
    )
    inner = np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1
    return np.concatenate(([0], inner, [n])).astype(np.int64)


def entity_calls(groups: Sequence[PartialGroup]) -> list[EntityCall]:
    calls: dict[tuple[str, str, str, int], EntityCall] = {}
    for group in groups:
        table = group.table
        if table.num_rows == 0:
            continue
        spec, columns = group_spec(group)
        rows = list(zip(*(table[c].to_pylist() for c in ("level", "tile", *columns)), strict=True))
        bounds = runs(table)
        starts = bounds[:-1]
        los = np.minimum.reduceat(table["lo"].to_numpy(), starts).tolist()
        his = np.maximum.reduceat(table["hi"].to_numpy(), starts).tolist()
        lasts = np.maximum.reduceat(table["last_t"].to_numpy(), starts).tolist()
        entities = table["entity"].take(pa.array(starts)).to_pylist()
        partitions = table["log_partition"].take(pa.array(starts)).to_pylist()
        ends = bounds[1:].tolist()
        for k, a in enumerate(starts.tolist()):
            key = (group.project_id, group.entity_key, entities[k], partitions[k])
            call = calls.get(key)
            if call is None:
                ref = EntityRef(group.project_id, group.entity_key, str(entities[k]))
                call = calls[key] = EntityCall(ref, partitions[k], los[k], his[k])
            else:
                call.lo, call.hi = min(call.lo, los[k]), max(call.hi, his[k])
            call.args += (spec, pack((lasts[k], rows[a : ends[k]])))
    return list(calls.values())
