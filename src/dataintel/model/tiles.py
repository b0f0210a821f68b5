"""Tiles: the online representation of a windowed aggregation (DESIGN.md §3).

Every event of a feature updates one tile per level: 1 s, 1 min, 1 h and 1 d, plus a 1 µs
tile (the raw event) while it is recent (within ``HEAD_US`` of the processor clock, or in the
future). Evaluated at t, a window [S, t] with S = floor((t - W)/g)·g is the disjoint union of
the *maximal* aligned tiles inside [S, t + 1µs): a tile is used when it lies inside that
interval and its parent (the tile one level up that contains it) does not. Every instant of
[S, t] is covered by exactly one used tile, so the value is exact, and at most a few hundred
tiles are read whatever the number of events (≤ 59 s + 59 min + 23 h on each side, days in
the middle).

A tile's state is a small msgpack-friendly value, merged associatively (see ``merge``):

    COUNT n · SUM s · AVG [s, n] · MIN v · MAX v · FIRST/LAST [ts, event_id, value]
    COUNT_DISTINCT [distinct keys]

Tiles too old to be used by any window at a time ≥ now are dropped (``cutoffs``); for a
``lifetime`` value the dropped day tiles are first merged into one *base* state that covers
every event before ``base_end``.

One blob per (entity, feature version): ``{"t": {"<level>": {start_us: state}},
"b": base state | None, "e": base_end_us | None, "l": last event time µs}``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dataintel.model.aggregations import Aggregation
from dataintel.model.windows import LIFETIME, parse_window

SECOND = 1_000_000
SIZES = (1, SECOND, 60 * SECOND, 3600 * SECOND, 86400 * SECOND)  # µs per level 0..4
LEVELS = tuple(str(i) for i in range(len(SIZES)))
TOP = len(SIZES) - 1
HEAD_US = 60 * SECOND  # 1 µs tiles are kept this long after the processor clock passed them
SLACK_US = 60 * SECOND  # tolerated clock difference between processor and serving replicas

Blob = dict[str, Any]


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """One value of a feature: ``<feature>_<window>``."""

    value_name: str
    window: str
    span_us: int | None  # None for lifetime
    granularity_us: int | None


def window_specs(feature: str, windows: Sequence[str]) -> tuple[WindowSpec, ...]:
    specs = []
    for text in windows:
        w = parse_window(text)
        specs.append(
            WindowSpec(
                f"{feature}_{w.name}",
                w.name,
                None if w.seconds is None else w.seconds * SECOND,
                None if w.granularity_seconds is None else w.granularity_seconds * SECOND,
            )
        )
    return tuple(specs)


def keeps(windows: Sequence[WindowSpec]) -> tuple[int, ...]:
    """How long (µs before the processor clock) tiles of each level stay useful.

    A level-i tile is read only when its parent straddles an end of the window: the start S
    (only when g(W) is finer than the parent, so S need not be aligned to it) or the current
    instant (recent tiles). The top level is read across the whole window.
    """
    spans = [(w.span_us or 0) + (w.granularity_us or 0) for w in windows]
    out = [HEAD_US]
    for i in range(1, len(SIZES)):
        if i == TOP:
            need = max([SIZES[TOP], *spans])
        else:
            parent = SIZES[i + 1]
            need = max(
                [parent]
                + [
                    (w.span_us or 0) + (w.granularity_us or 0)
                    for w in windows
                    if w.granularity_us is not None and w.granularity_us < parent
                ]
            )
        out.append(max(need + SLACK_US, out[-1]))
    return tuple(out)


def cutoffs(keep: Sequence[int], now_us: int) -> tuple[int, ...]:
    """Per level: tiles ending at or before this instant are dropped."""
    return tuple(now_us - k for k in keep)


def has_lifetime(windows: Iterable[WindowSpec]) -> bool:
    return any(w.window == LIFETIME for w in windows)


# --- merging states -----------------------------------------------------------------------


def merge(agg: Aggregation, a: Any, b: Any) -> Any:
    """The state of the union of two disjoint event sets (``None`` = no events)."""
    if a is None:
        return b
    if b is None:
        return a
    if agg is Aggregation.COUNT or agg is Aggregation.SUM:
        return a + b
    if agg is Aggregation.AVG:
        return [a[0] + b[0], a[1] + b[1]]
    if agg is Aggregation.MIN:
        return b if b < a else a
    if agg is Aggregation.MAX:
        return b if b > a else a
    if agg is Aggregation.FIRST:
        return b if (b[0], b[1]) < (a[0], a[1]) else a
    if agg is Aggregation.LAST:
        return b if (b[0], b[1]) > (a[0], a[1]) else a
    # COUNT_DISTINCT
    seen = set(a)
    out = list(a)
    for v in b:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def final(agg: Aggregation, state: Any) -> Any:
    """The served value of a state (the empty-window rules of DESIGN.md §3)."""
    if agg is Aggregation.COUNT:
        return 0 if state is None else int(state)
    if agg is Aggregation.SUM:
        return 0.0 if state is None else float(state)
    if agg is Aggregation.COUNT_DISTINCT:
        return 0 if state is None else len(state)
    if state is None:
        return None
    if agg is Aggregation.AVG:
        return float(state[0]) / state[1] if state[1] else None
    if agg is Aggregation.MIN or agg is Aggregation.MAX:
        return float(state) if isinstance(state, int | float) else state
    return state[2]  # FIRST / LAST


def event_time(agg: Aggregation, state: Any) -> int | None:
    """For FIRST / LAST: the event time (µs) of the chosen event."""
    if state is None or agg not in (Aggregation.FIRST, Aggregation.LAST):
        return None
    return int(state[0])


# --- reading a window ---------------------------------------------------------------------


def _ceil(x: int, size: int) -> int:
    return -((-x) // size) * size


Levels = list[tuple[list[int], Mapping[int, Any]]]


def sorted_levels(blob: Blob) -> Levels:
    """Per level, the tile starts in order (and the tiles), for range lookups."""
    tiles: Mapping[str, Mapping[int, Any]] = blob.get("t") or {}
    out: Levels = []
    for level in LEVELS:
        found = tiles.get(level) or {}
        out.append((sorted(found), found))
    return out


def window_state(
    agg: Aggregation, blob: Blob, window: WindowSpec, t_us: int, levels: Levels | None = None
) -> Any:
    """The merged state of the events of ``window`` evaluated at ``t_us``.

    Per level, the used tiles are the starts in [S, E - size] minus those whose parent lies
    inside [S, E): [ceil(S/P)·P, floor(E/P)·P). Two bisections per level find them.
    """
    end = t_us + 1  # exclusive
    state: Any = None
    if window.span_us is None:
        start = blob.get("e")
        state = blob.get("b")
    else:
        g = window.granularity_us or SECOND
        start = ((t_us - window.span_us) // g) * g
    for i, (starts, tiles) in enumerate(levels if levels is not None else sorted_levels(blob)):
        if not starts:
            continue
        size = SIZES[i]
        lo = 0 if start is None else bisect_left(starts, start)
        hi = bisect_right(starts, end - size)
        if lo >= hi:
            continue
        ranges = [(lo, hi)]
        if i < TOP:
            parent = SIZES[i + 1]
            # No start (lifetime without a base): every parent before ``end`` is inside.
            first = starts[lo]
            inner_lo = first - first % parent if start is None else _ceil(start, parent)
            inner_hi = (end // parent) * parent
            if inner_lo < inner_hi:
                cut_lo = bisect_left(starts, inner_lo, lo, hi)
                cut_hi = bisect_left(starts, inner_hi, lo, hi)
                ranges = [(lo, cut_lo), (cut_hi, hi)]
        for a, b in ranges:
            for k in range(a, b):
                state = merge(agg, state, tiles[starts[k]])
    return state


def evaluate(
    agg: Aggregation, blob: Blob | None, windows: Sequence[WindowSpec], t_us: int
) -> dict[str, tuple[Any, int | None]]:
    """Every value of one feature at ``t_us``: value name → (value, FIRST/LAST event time)."""
    out: dict[str, tuple[Any, int | None]] = {}
    levels = None if blob is None else sorted_levels(blob)
    for w in windows:
        state = None if blob is None else window_state(agg, blob, w, t_us, levels)
        out[w.value_name] = (final(agg, state), event_time(agg, state))
    return out


# --- writing: apply partial tiles to a blob (the embedded store; the Lua script mirrors it) ---


def apply_partial(
    agg: Aggregation,
    blob: Blob | None,
    tiles: Mapping[str, Mapping[int, Any]],
    last_ts: int,
    cuts: Sequence[int],
    lifetime: bool,
) -> Blob:
    """Merge the partial ``tiles`` of a micro-batch into ``blob`` and drop expired tiles."""
    out: Blob = blob if blob is not None else {"t": {}, "b": None, "e": None, "l": None}
    stored: dict[str, dict[int, Any]] = out["t"]
    base_end = out.get("e")
    for level, partial in tiles.items():
        if base_end is not None and partial and min(partial) < base_end:
            _apply_level_under_base(agg, out, level, partial, base_end, lifetime)
            continue
        current = stored.get(level)
        if current is None:
            stored[level] = dict(partial)
            continue
        # Set operations and ``update`` run in C; only tiles present on both sides merge in
        # Python. Same result and key order as merging tile by tile.
        common = current.keys() & partial.keys()
        merged = {a: merge(agg, current[a], partial[a]) for a in common}
        current.update(partial)
        current.update(merged)
    previous = out.get("l")
    out["l"] = last_ts if previous is None else max(previous, last_ts)
    trim(agg, out, cuts, lifetime)
    return out


def _apply_level_under_base(
    agg: Aggregation,
    blob: Blob,
    level: str,
    partial: Mapping[int, Any],
    base_end: int,
    lifetime: bool,
) -> None:
    """Tile by tile, for a level with tiles before ``base_end`` (they go to the base)."""
    top = int(level) == TOP
    current = blob["t"].setdefault(level, {})
    for a, s in partial.items():
        if a < base_end:
            if top and lifetime:
                blob["b"] = merge(agg, blob.get("b"), s)
            continue
        current[a] = merge(agg, current.get(a), s)


def trim(agg: Aggregation, blob: Blob, cuts: Sequence[int], lifetime: bool) -> None:
    """Drop the tiles that ended at or before their level's cut (or lie under the base).

    Most batches expire nothing: a level is scanned only when its earliest tile (``min``,
    a C loop) is expired, so the common case costs one ``min`` per level."""
    stored: dict[str, dict[int, Any]] = blob["t"]
    top = stored.get(LEVELS[TOP])
    if top and min(top) + SIZES[TOP] <= cuts[TOP] and lifetime:
        expired = sorted(a for a in top if a + SIZES[TOP] <= cuts[TOP])
        for a in expired:
            blob["b"] = merge(agg, blob.get("b"), top[a])
        end = expired[-1] + SIZES[TOP]
        blob["e"] = end if blob.get("e") is None else max(blob["e"], end)
    base_end = blob.get("e")
    for i, level in enumerate(LEVELS):
        tiles = stored.get(level)
        if not tiles:
            stored.pop(level, None)
            continue
        size = SIZES[i]
        low = min(tiles)
        if low + size > cuts[i] and (base_end is None or low >= base_end):
            continue
        dead = [a for a in tiles if a + size <= cuts[i] or (base_end is not None and a < base_end)]
        for a in dead:
            del tiles[a]
        if not tiles:
            del stored[level]
