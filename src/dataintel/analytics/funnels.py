"""Funnels: fetch (``funnels_query``), compute per entity (``funnels_engine``), count per step
and per breakdown value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from dataintel.analytics.funnels_engine import EntityFunnels, compute
from dataintel.analytics.funnels_query import fetch
from dataintel.analytics.funnels_spec import EventMatch, FunnelSpec
from dataintel.storage.analytics.port import AnalyticsStore

OTHER = "$other"


@dataclass(frozen=True, slots=True)
class StepCounts:
    step: int  # 1-based
    label: str
    entered: int
    converted: int | None  # went on to the next step (None for the last)
    dropped_off: int | None  # stopped here, their window elapsed
    in_window: int | None  # stopped here so far, a window still open at ``to``
    conversion_from_previous: float | None
    conversion_from_first: float | None
    median_seconds: float | None  # from the previous step into this one
    average_seconds: float | None


@dataclass(frozen=True, slots=True)
class FunnelGroup:
    value: str | None
    steps: list[StepCounts]
    excluded: int


@dataclass(frozen=True, slots=True)
class FunnelResult:
    total: FunnelGroup
    breakdown: list[FunnelGroup] | None


def label(match: EventMatch) -> str:
    if not match.filters:
        return match.event
    terms = ",".join(f"{f.prop}{f.op}{_value(f.value)}" for f in match.filters)
    return f"{match.event}[{terms}]"


def _value(value: str | float) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return f'"{value}"'


def run_funnel(store: AnalyticsStore, project_id: str, spec: FunnelSpec) -> FunnelResult:
    events = fetch(store, spec, project_id)
    per_entity = compute(events, spec)
    total = _group(None, per_entity, np.ones(per_entity.level.size, np.bool_), spec)
    if spec.breakdown is None:
        return FunnelResult(total, None)
    values = _values(events.breakdown, per_entity.first_row)
    return FunnelResult(total, _breakdown(values, per_entity, spec))


def _values(column: pa.Array | None, first_row: npt.NDArray[np.int64]) -> list[str | None]:
    if column is None:
        return [None] * first_row.size
    taken = column.take(pa.array(np.maximum(first_row, 0))).to_pylist()
    return [v if row >= 0 else None for v, row in zip(taken, first_row.tolist(), strict=True)]


def _breakdown(
    values: list[str | None], per_entity: EntityFunnels, spec: FunnelSpec
) -> list[FunnelGroup]:
    counted = (per_entity.level > 0) & ~per_entity.excluded
    sizes: dict[str | None, int] = {}
    for value, yes in zip(values, counted.tolist(), strict=True):
        if yes:
            sizes[value] = sizes.get(value, 0) + 1
    ranked = sorted(sizes, key=lambda v: (-sizes[v], v is None, v or ""))
    kept = set(ranked[: spec.breakdown_limit])
    names = np.array([v if v in kept else OTHER for v in values], dtype=object)
    groups = []
    for value in [*(v for v in ranked if v in kept), *([OTHER] if len(ranked) > len(kept) else [])]:
        mask = np.array([v is None for v in values], np.bool_) if value is None else names == value
        groups.append(_group(value, per_entity, np.asarray(mask, np.bool_), spec))
    return groups


def _group(
    value: str | None, f: EntityFunnels, members: npt.NDArray[np.bool_], spec: FunnelSpec
) -> FunnelGroup:
    n = len(spec.steps)
    alive = members & ~f.excluded
    level = f.level[alive]
    pending = f.pending[alive]
    gaps = f.gaps[alive]
    entered = [int(np.count_nonzero(level >= k)) for k in range(1, n + 1)]
    steps = []
    for k in range(1, n + 1):
        stopped = level == k
        last = k == n
        times = gaps[level >= k, k - 2] / 1_000_000 if k > 1 else np.zeros(0)
        steps.append(
            StepCounts(
                step=k,
                label=label(spec.steps[k - 1]),
                entered=entered[k - 1],
                converted=None if last else entered[k],
                dropped_off=None if last else int(np.count_nonzero(stopped & ~pending)),
                in_window=None if last else int(np.count_nonzero(stopped & pending)),
                conversion_from_previous=_rate(entered[k - 1], entered[k - 2]) if k > 1 else None,
                conversion_from_first=_rate(entered[k - 1], entered[0]),
                median_seconds=float(np.median(times)) if times.size else None,
                average_seconds=float(np.mean(times)) if times.size else None,
            )
        )
    excluded = int(np.count_nonzero(members & f.excluded))
    return FunnelGroup(value, steps, excluded)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None
