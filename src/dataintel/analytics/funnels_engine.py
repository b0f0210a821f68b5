"""The funnel of every entity at once: numpy over the sorted rows of ``funnels_query``.

No loop per event: the loops run over steps (at most 12) and exclusions (at most 8); each
iteration is a handful of vectorised searches over all entities.

Ordered / strict (docs/analytics-funnels.md): a chain is one event per step 1..k, in time
order (a tie on the timestamp is ordered by step number), never one event for two
consecutive steps, every step within ``window`` of step 1 and within its own step window of
the step before; strict: no event of the entity strictly between two chained steps, except
events matching the earlier step again. For each event of step k the algorithm keeps the
chain through the *latest* chain-ending event of step k-1 before it: that one has the latest
start and the latest time, so if it does not satisfy the windows, no earlier one does. The
entity's level is the longest chain.

Unordered: the largest number of distinct steps with an event inside one window
[t, t + window], t the time of a step event (an event matching several steps counts for each).

Exclusions: the chains of the entity's level (for each end event, the chain kept above) are
checked; a chain contains an exclusion event of range a-b when one lies strictly after its
step a and strictly before its step b (or, for a chain that stopped between a and b, up to
``window`` after its step 1). The entity drops out of the funnel when every such chain
contains one. Time to convert comes from the first clean chain of the entity's level.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dataintel.analytics.funnels_query import FunnelEvents
from dataintel.analytics.funnels_spec import FunnelMode, FunnelSpec

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class EntityFunnels:
    level: I64  # per entity: steps reached (0 = never entered)
    excluded: B  # dropped by an exclusion
    gaps: F64  # (entities, steps-1): µs from step k to step k+1 in the chosen chain; NaN
    pending: B  # not converted, and a window still open at ``spec.end``
    first_row: I64  # the row whose breakdown value the entity takes (-1: none)


def _micros(delta_seconds: float) -> int:
    return round(delta_seconds * 1_000_000)


# Entities are independent: from this many rows on, they are cut into one slice per core
# (at most 4), computed in threads (numpy releases the GIL) and joined.
PARALLEL_ROWS = 1_000_000


def compute(ev: FunnelEvents, spec: FunnelSpec, parts: int | None = None) -> EntityFunnels:
    if parts is None:
        parts = min(os.cpu_count() or 1, 4) if ev.t.size >= PARALLEL_ROWS else 1
    slices = _split(ev, parts)
    if len(slices) < 2:
        return _compute(ev, spec)
    with ThreadPoolExecutor(len(slices)) as pool:
        results = list(pool.map(lambda piece: _compute(piece[1], spec), slices))
    shifted = [
        np.where(r.first_row >= 0, r.first_row + start, -1)
        for (start, _), r in zip(slices, results, strict=True)
    ]
    return EntityFunnels(
        np.concatenate([r.level for r in results]),
        np.concatenate([r.excluded for r in results]),
        np.concatenate([r.gaps for r in results]),
        np.concatenate([r.pending for r in results]),
        np.concatenate(shifted).astype(np.int64),
    )


def _split(ev: FunnelEvents, parts: int) -> list[tuple[int, FunnelEvents]]:
    """``ev`` cut at entity boundaries into at most ``parts`` slices of about as many
    entities, each with its first row and entity codes from 0."""
    if parts < 2 or ev.n_entities < parts:
        return [(0, ev)]
    cuts = [0]
    for p in range(1, parts):
        cuts.append(int(np.searchsorted(ev.entity, ev.n_entities * p // parts)))
    cuts.append(ev.t.size)
    slices = []
    for a, b in itertools.pairwise(cuts):
        if b > a:
            first = int(ev.entity[a])
            piece = FunnelEvents(
                ev.entity[a:b] - first,
                ev.t[a:b],
                ev.mask[a:b],
                ev.breakdown.slice(a, b - a) if ev.breakdown is not None else None,
                int(ev.entity[b - 1]) - first + 1,
            )
            slices.append((a, piece))
    return slices


def _compute(ev: FunnelEvents, spec: FunnelSpec) -> EntityFunnels:
    n_ent = ev.n_entities
    n = len(spec.steps)
    if n_ent == 0:
        return EntityFunnels(
            np.zeros(0, np.int64),
            np.zeros(0, np.bool_),
            np.zeros((0, n - 1)),
            np.zeros(0, np.bool_),
            np.zeros(0, np.int64),
        )
    if spec.mode is FunnelMode.UNORDERED:
        return _unordered(ev, spec)
    return _ordered(ev, spec)


def _groups(ev: FunnelEvents) -> I64:
    """Dense id of each (entity, time) pair, in row order."""
    change = np.empty(ev.t.size, np.bool_)
    change[0] = True
    change[1:] = (ev.entity[1:] != ev.entity[:-1]) | (ev.t[1:] != ev.t[:-1])
    return np.cumsum(change, dtype=np.int64) - 1


def _first_per_entity(entities: I64) -> I64:
    """Index of the first element of each run of ``entities`` (sorted)."""
    if entities.size == 0:
        return np.zeros(0, np.int64)
    change = np.empty(entities.size, np.bool_)
    change[0] = True
    change[1:] = entities[1:] != entities[:-1]
    return np.flatnonzero(change)


def _last_per_entity(entities: I64) -> I64:
    if entities.size == 0:
        return np.zeros(0, np.int64)
    change = np.empty(entities.size, np.bool_)
    change[-1] = True
    change[:-1] = entities[1:] != entities[:-1]
    return np.flatnonzero(change)


class _Counter:
    """Counts rows of one exclusion per entity inside time intervals, vectorised."""

    def __init__(self, ev: FunnelEvents, bit: int) -> None:
        rows = np.flatnonzero(ev.mask & (1 << bit))
        self.times = np.unique(ev.t[rows])
        self.span = max(int(self.times.size) + 1, 1)
        self.keys = ev.entity[rows] * self.span + np.searchsorted(self.times, ev.t[rows])

    def between(self, entity: I64, lo: I64, hi: I64, hi_inclusive: bool) -> I64:
        """How many rows with lo < t < hi (or <= hi) belong to ``entity``."""
        base = entity * self.span
        k_lo = base + np.searchsorted(self.times, lo, side="right")
        k_hi = base + np.searchsorted(self.times, hi, side="right" if hi_inclusive else "left")
        count = np.searchsorted(self.keys, k_hi) - np.searchsorted(self.keys, k_lo)
        result: I64 = np.maximum(count, 0).astype(np.int64)
        return result


def _ordered(ev: FunnelEvents, spec: FunnelSpec) -> EntityFunnels:
    n = len(spec.steps)
    window = _micros(spec.window.total_seconds())
    grp = _groups(ev)
    strict = spec.mode is FunnelMode.STRICT
    n_groups = int(grp[-1]) + 1
    level = np.zeros(ev.n_entities, np.int64)
    chains: list[tuple[I64, I64]] = []  # per step: (rows of chain ends, chain times (k, m))
    for k in range(n):
        rows = np.flatnonzero(ev.mask & (1 << k))
        if k == 0:
            ends, times = rows, ev.t[rows][None, :]
        else:
            prev_rows, prev_times = chains[k - 1]
            ends, times, preds = _advance(ev, grp, rows, prev_rows, prev_times, k, spec, window)
            if strict and ends.size:
                keep = _unbroken(ev, grp, n_groups, k, grp[preds], grp[ends])
                ends, times = ends[keep], times[:, keep]
        chains.append((ends, times))
        if ends.size:
            level[ev.entity[ends]] = k + 1
    excluded, gaps = _choose_chains(ev, spec, chains, level, window)
    firsts = np.flatnonzero(ev.mask & 1)
    first_row = np.full(ev.n_entities, -1, np.int64)
    pending = np.zeros(ev.n_entities, np.bool_)
    if firsts.size:
        ent1 = ev.entity[firsts]
        first_row[ent1[_first_per_entity(ent1)]] = firsts[_first_per_entity(ent1)]
        last = firsts[_last_per_entity(ent1)]
        open_ = ev.t[last] + window >= _epoch_us(spec)
        pending[ev.entity[last]] = open_
    pending &= (level < n) & ~excluded & (level > 0)
    return EntityFunnels(level, excluded, gaps, pending, first_row)


def _epoch_us(spec: FunnelSpec) -> int:
    return int(spec.end.timestamp() * 1_000_000)


def _advance(
    ev: FunnelEvents,
    grp: I64,
    rows: I64,
    prev_rows: I64,
    prev_times: I64,
    k: int,
    spec: FunnelSpec,
    window: int,
) -> tuple[I64, I64, I64]:
    """The events of step k that extend a chain of step k-1, with their chains' times and
    the rows of the step k-1 events they extend."""
    if rows.size == 0 or prev_rows.size == 0:
        return rows[:0], np.zeros((k + 1, 0), np.int64), rows[:0]
    # the latest chain end of step k-1 at or before the event's (entity, time) ...
    idx = np.searchsorted(grp[prev_rows], grp[rows], side="right") - 1
    # ... that is not this very event (one event never fills two consecutive steps)
    same = (idx >= 0) & (prev_rows[np.maximum(idx, 0)] == rows)
    idx = idx - same
    ok = idx >= 0
    at = np.maximum(idx, 0)
    ok &= ev.entity[prev_rows[at]] == ev.entity[rows]
    t = ev.t[rows]
    ok &= t - prev_times[0, at] <= window
    limit = spec.step_windows.get(k + 1)
    if limit is not None:
        ok &= t - prev_times[k - 1, at] <= _micros(limit.total_seconds())
    at = at[ok]
    return rows[ok], np.vstack([prev_times[:, at], t[ok][None, :]]), prev_rows[at]


def _unbroken(ev: FunnelEvents, grp: I64, n_groups: int, k: int, g_prev: I64, g_end: I64) -> B:
    """Strict: no event strictly between step k-1 and step k (in time) that does not match
    step k-1 (events sharing the timestamp of either end never break, as in PostHog)."""
    other = ((ev.mask & (1 << (k - 1))) == 0).astype(np.int64)
    per_group = np.bincount(grp, weights=other, minlength=n_groups).astype(np.int64)
    before = np.concatenate([[0], np.cumsum(per_group)])  # before[g]: in groups < g
    between = before[g_end] - before[np.minimum(g_prev + 1, g_end)]
    return np.asarray(between == 0)


def _choose_chains(
    ev: FunnelEvents,
    spec: FunnelSpec,
    chains: list[tuple[I64, I64]],
    level: I64,
    window: int,
) -> tuple[npt.NDArray[np.bool_], F64]:
    n = len(spec.steps)
    excluded = np.zeros(ev.n_entities, np.bool_)
    gaps = np.full((ev.n_entities, n - 1), np.nan)
    counters = [_Counter(ev, n + i) for i in range(len(spec.exclusions))]
    for k in range(n):
        ends, times = chains[k]
        if ends.size == 0:
            continue
        ent = ev.entity[ends]
        top = level[ent] == k + 1
        ends, times, ent = ends[top], times[:, top], ent[top]
        if ends.size == 0:
            continue
        clean = np.ones(ends.size, np.bool_)
        for ex, counter in zip(spec.exclusions, counters, strict=True):
            a, b = ex.from_step, ex.to_step
            if k + 1 < a:
                continue
            lo = times[a - 1]
            if k + 1 >= b:
                hits = counter.between(ent, lo, times[b - 1], hi_inclusive=False)
            else:
                hits = counter.between(ent, lo, times[0] + window, hi_inclusive=True)
            clean &= hits == 0
        good = np.flatnonzero(clean)
        firsts = good[_first_per_entity(ent[good])]
        chosen_ent = ent[firsts]
        everyone = np.unique(ent)
        excluded[everyone] = True
        excluded[chosen_ent] = False
        if k:
            gaps[chosen_ent, :k] = np.diff(times[:, firsts], axis=0).T
    return excluded, gaps


def _unordered(ev: FunnelEvents, spec: FunnelSpec) -> EntityFunnels:
    n = len(spec.steps)
    window = _micros(spec.window.total_seconds())
    grp = _groups(ev)
    step_bits = (1 << n) - 1
    anchors = np.flatnonzero(ev.mask & step_bits)
    a_ent, a_t, a_grp = ev.entity[anchors], ev.t[anchors], grp[anchors]
    hit_t = np.full((n, anchors.size), np.iinfo(np.int64).max, np.int64)
    for k in range(n):
        rows = np.flatnonzero(ev.mask & (1 << k))
        if rows.size == 0:
            continue
        j = np.minimum(np.searchsorted(grp[rows], a_grp, side="left"), rows.size - 1)
        r = rows[j]
        ok = (grp[r] >= a_grp) & (ev.entity[r] == a_ent) & (ev.t[r] - a_t <= window)
        hit_t[k, ok] = ev.t[r[ok]]
    hits = hit_t != np.iinfo(np.int64).max
    a_level = hits.sum(axis=0).astype(np.int64)
    level = np.zeros(ev.n_entities, np.int64)
    np.maximum.at(level, a_ent, a_level)
    top = np.flatnonzero(a_level == level[a_ent])
    clean = np.ones(top.size, np.bool_)
    top_t = a_t[top]
    last = np.where(hits[:, top], hit_t[:, top], np.iinfo(np.int64).min).max(axis=0)
    for i in range(len(spec.exclusions)):
        counter = _Counter(ev, n + i)
        done = a_level[top] == n
        closed = counter.between(a_ent[top], top_t, last, hi_inclusive=False)
        open_ = counter.between(a_ent[top], top_t, top_t + window, hi_inclusive=True)
        clean &= np.where(done, closed, open_) == 0
    good = top[clean]
    chosen = good[_first_per_entity(a_ent[good])]
    excluded = np.zeros(ev.n_entities, np.bool_)
    excluded[np.unique(a_ent)] = True
    excluded[a_ent[chosen]] = False
    ordered_t = np.sort(np.where(hits[:, chosen], hit_t[:, chosen], np.iinfo(np.int64).max), 0)
    gaps = np.full((ev.n_entities, n - 1), np.nan)
    diffs = np.diff(ordered_t.astype(np.float64), axis=0).T  # (chosen, n-1)
    reached = level[a_ent[chosen]]
    valid = np.arange(1, n)[None, :] < reached[:, None]
    gaps[a_ent[chosen]] = np.where(valid, diffs, np.nan)
    first_row = np.full(ev.n_entities, -1, np.int64)
    firsts = _first_per_entity(a_ent)
    first_row[a_ent[firsts]] = anchors[firsts]
    pending = np.zeros(ev.n_entities, np.bool_)
    lasts = _last_per_entity(a_ent)
    pending[a_ent[lasts]] = a_t[lasts] + window >= _epoch_us(spec)
    pending &= (level < n) & ~excluded & (level > 0)
    return EntityFunnels(level, excluded, gaps, pending, first_row)
