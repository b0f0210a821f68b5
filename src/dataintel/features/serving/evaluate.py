"""Serving-side window evaluation: every window of a feature in one pass over sorted tiles.

Gives exactly what ``tiles.evaluate`` gives at the same t (the reference: same tiles, merged
in the same order), but

- a blob's tiles are sorted once, not on every request: the sorted index (per non-empty
  level: tile starts and their states, in order) is kept beside the blob, keyed by the blob
  object. Published blobs are never mutated (both online stores replace a changed blob as a
  whole), so an index built for a blob object stays right for as long as that object lives;
- what depends only on t (per level: the last usable tile, the inner parents' end) is found
  once per blob and shared by all its windows;
- the states a window uses are gathered in the reference's order and merged by a C-level
  fold whose result equals the reference's left fold of ``tiles.merge``: ``+`` left to right
  (COUNT, SUM, AVG per component), ``min``/``max`` (the first of equal candidates, as
  ``merge`` keeps), ``min``/``max`` by (time, event id) for FIRST/LAST. COUNT_DISTINCT and
  anything else fold with ``tiles.merge`` itself.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from functools import reduce
from operator import add, itemgetter
from typing import Any

from dataintel.model.aggregations import Aggregation
from dataintel.model.tiles import (
    LEVELS,
    SECOND,
    SIZES,
    TOP,
    Blob,
    WindowSpec,
    event_time,
    final,
    merge,
)
from dataintel.storage.online.codec import DEFAULT_CACHE_MB, TILE_BYTES

# Indexes kept, bounded by their tiles (twice what the online stores' default caches hold, so
# the indexes of every cached blob fit); the whole map is dropped when it fills up.
INDEX_CACHE_TILES = 2 * (DEFAULT_CACHE_MB << 20) // TILE_BYTES

# Per non-empty level: (tile size, parent size or 0 for the top level, starts, states).
Level = tuple[int, int, list[int], list[Any]]


# An evaluation remembered on an index: (windows, from t, until t (exclusive), values).
Memo = tuple[Sequence[WindowSpec], int, int, dict[str, tuple[Any, int | None]]]


class BlobIndex:
    __slots__ = ("base", "base_end", "levels", "memo", "tiles")

    def __init__(self, blob: Blob) -> None:
        tiles = blob.get("t") or {}
        levels: list[Level] = []
        for i, level in enumerate(LEVELS):
            found = tiles.get(level)
            if found:
                starts = sorted(found)
                parent = SIZES[i + 1] if i < TOP else 0
                levels.append((SIZES[i], parent, starts, [found[a] for a in starts]))
        self.levels = tuple(levels)
        self.tiles = sum(len(level[2]) for level in levels)
        self.base: Any = blob.get("b")
        self.base_end: int | None = blob.get("e")
        self.memo: dict[int, Memo] = {}  # by id(windows); the entry holds the windows


_indexes: dict[int, tuple[Blob, BlobIndex]] = {}
_indexed_tiles = 0
_lock = threading.Lock()


def index_of(blob: Blob) -> BlobIndex:
    """The sorted index of ``blob`` (built on first use). The map holds the blob itself, so
    its id cannot be reused by another object while the entry lives."""
    hit = _indexes.get(id(blob))
    if hit is not None and hit[0] is blob:
        return hit[1]
    global _indexed_tiles
    index = BlobIndex(blob)
    with _lock:
        if _indexed_tiles + index.tiles + 1 > INDEX_CACHE_TILES:
            _indexes.clear()
            _indexed_tiles = 0
        _indexes[id(blob)] = (blob, index)
        _indexed_tiles += index.tiles + 1
    return index


# --- folds: equal to a left fold of tiles.merge over the same states in the same order ------

_key = itemgetter(0, 1)


def _sum(states: list[Any]) -> Any:
    return reduce(add, states)


def _avg(states: list[Any]) -> Any:
    if len(states) == 1:
        return states[0]
    return [reduce(add, [s[0] for s in states]), reduce(add, [s[1] for s in states])]


def _first(states: list[Any]) -> Any:
    return min(states, key=_key)


def _last(states: list[Any]) -> Any:
    return max(states, key=_key)


def _generic(agg: Aggregation) -> Callable[[list[Any]], Any]:
    def fold(states: list[Any]) -> Any:
        state: Any = None
        for s in states:
            state = merge(agg, state, s)
        return state

    return fold


_FOLDS: dict[Aggregation, Callable[[list[Any]], Any]] = {
    Aggregation.COUNT: _sum,
    Aggregation.SUM: _sum,
    Aggregation.AVG: _avg,
    Aggregation.MIN: min,
    Aggregation.MAX: max,
    Aggregation.FIRST: _first,
    Aggregation.LAST: _last,
}


def fold_of(agg: Aggregation) -> Callable[[list[Any]], Any]:
    return _FOLDS.get(agg) or _generic(agg)


# --- evaluation ---------------------------------------------------------------------------

Value = tuple[Any, int | None]


def evaluate(
    agg: Aggregation, blob: Blob | None, windows: Sequence[WindowSpec], t_us: int
) -> dict[str, Value]:
    """Every value of one feature at ``t_us``: value name → (value, FIRST/LAST event time),
    exactly as ``tiles.evaluate``.

    The answer is remembered on the blob's index with the instant until which none of its
    values can change (``_evaluate``), and given again for any t in [then, until): a hot
    entity read many times a second is evaluated once per change. Callers must not mutate it.
    """
    if blob is None:
        empty = (final(agg, None), None)
        return {w.value_name: empty for w in windows}
    index = index_of(blob)
    memo = index.memo.get(id(windows))
    if memo is not None and memo[0] is windows and memo[1] <= t_us < memo[2]:
        return memo[3]
    out, until = _evaluate(agg, index, windows, t_us)
    last = blob.get("l")
    if until > t_us and last is not None and last <= t_us:  # no event after t can enter later
        if len(index.memo) >= MEMOS_PER_BLOB:
            index.memo.clear()
        index.memo[id(windows)] = (windows, t_us, until, out)
    return out


NEVER = 1 << 62  # "no bound" for an instant in µs
MEMOS_PER_BLOB = 8  # selections of one blob remembered at once


def _evaluate(
    agg: Aggregation, index: BlobIndex, windows: Sequence[WindowSpec], t_us: int
) -> tuple[dict[str, Value], int]:
    """The values at ``t_us`` and the first instant at which one of them may differ, given
    that no event lies after t (the caller checks): a window's value changes only when its
    start S(t) = floor((t - W) / g)·g passes an event, and every event from S on lies at or
    after the earliest tile the window uses, e. S(t') stays <= e while t' < (e // g + 1)·g + W.
    A lifetime window's start never moves."""
    end = t_us + 1  # exclusive
    usable = []  # per level with tiles before ``end``: what does not depend on the window
    for size, parent, starts, states in index.levels:
        hi = bisect_right(starts, end - size)
        if hi:
            inner_hi = (end // parent) * parent if parent else 0
            # The used tiles after the inner parents: the same for every window that has any.
            tail_lo = bisect_left(starts, inner_hi, 0, hi) if parent else 0
            tail_start = starts[tail_lo] if tail_lo < hi else NEVER
            usable.append((parent, starts, states, hi, inner_hi, states[tail_lo:hi], tail_start))
    fold = fold_of(agg)
    empty = (final(agg, None), None)
    timed = agg is Aggregation.FIRST or agg is Aggregation.LAST  # else event_time is None
    out: dict[str, Value] = {}
    until = NEVER
    for w in windows:
        used: list[Any] = []
        earliest = NEVER  # the start of the earliest tile used
        g = w.granularity_us or SECOND
        if w.span_us is None:
            start = index.base_end
            if index.base is not None:
                used.append(index.base)
        else:
            start = ((t_us - w.span_us) // g) * g
        for parent, starts, states, hi, inner_hi, tail, tail_start in usable:
            if parent and start is not None and start < inner_hi and not start % parent:
                # The start is on a parent boundary (g(W) >= the parent): no head tiles, and
                # the tail is empty when no tile lies in [start, end).
                used += tail
                earliest = min(earliest, tail_start)
                continue
            lo = 0 if start is None else bisect_left(starts, start, 0, hi)
            if lo >= hi:
                continue
            if parent:
                if start is None:
                    first = starts[lo]
                    inner_lo = first - first % parent
                else:
                    inner_lo = -((-start) // parent) * parent
                if inner_lo < inner_hi:
                    # lo <= the tail's first index, since start <= inner_lo < inner_hi
                    if inner_lo != start:
                        head_hi = bisect_left(starts, inner_lo, lo, hi)
                        if head_hi > lo:
                            used += states[lo:head_hi]
                            earliest = min(earliest, starts[lo])
                    used += tail
                    earliest = min(earliest, tail_start)
                    continue
            used += states[lo:hi]
            earliest = min(earliest, starts[lo])
        if w.span_us is not None and earliest != NEVER:
            until = min(until, (earliest // g + 1) * g + w.span_us)
        if not used:
            out[w.value_name] = empty
            continue
        state = fold(used)
        out[w.value_name] = (final(agg, state), event_time(agg, state) if timed else None)
    return out, until
