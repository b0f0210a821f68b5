"""Brute-force funnels: every chain of every entity enumerated, straight from the rules in
docs/analytics-funnels.md (no shared code with the engine)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from itertools import groupby, pairwise


@dataclass(frozen=True)
class Ev:
    entity: str
    t: int  # µs
    steps: frozenset[int]  # 1-based
    exclusions: frozenset[int] = frozenset()  # 1-based exclusion numbers
    breakdown: str | None = None
    idx: int = 0


@dataclass
class Outcome:
    level: int
    excluded: bool
    pending: bool
    gap_options: list[tuple[int, ...]] = field(default_factory=list)  # acceptable gaps
    breakdown: str | None = None


def funnel(
    events: list[Ev],
    n: int,
    mode: str,
    window: int,
    end: int,
    step_windows: dict[int, int] | None = None,
    exclusions: list[tuple[int, int]] | None = None,
) -> dict[str, Outcome]:
    step_windows = step_windows or {}
    exclusions = exclusions or []
    events = [
        Ev(e.entity, e.t, e.steps, e.exclusions, e.breakdown, i) for i, e in enumerate(events)
    ]
    out = {}
    for entity, group in groupby(sorted(events, key=lambda e: e.entity), key=lambda e: e.entity):
        mine = sorted(group, key=lambda e: e.t)
        if mode == "unordered":
            result = _unordered(mine, n, window, end, exclusions)
        else:
            result = _ordered(mine, n, mode, window, end, step_windows, exclusions)
        if result is not None:
            out[entity] = result
    return out


def _first_touch(candidates: list[Ev]) -> str | None:
    if not candidates:
        return None
    t0 = min(e.t for e in candidates)
    values = [e.breakdown for e in candidates if e.t == t0]
    present = sorted(v for v in values if v is not None)
    return present[0] if present else None


def _x_between(mine: list[Ev], x: int, lo: int, hi: int, hi_inclusive: bool) -> bool:
    return any(
        x in e.exclusions and lo < e.t and (e.t <= hi if hi_inclusive else e.t < hi) for e in mine
    )


def _ordered(mine, n, mode, window, end, step_windows, exclusions):
    entries = [(e, s) for e in mine for s in sorted(e.steps)]
    chains: list[list[tuple[Ev, int]]] = []

    def extend(chain):
        chains.append(chain)
        k = len(chain)  # the step of the last entry
        if k == n:
            return
        last_e, _ = chain[-1]
        for e, s in entries:
            if s != k + 1 or e.t < last_e.t or e.idx == last_e.idx:
                continue
            if e.t - chain[0][0].t > window:
                continue
            if k + 1 in step_windows and e.t - last_e.t > step_windows[k + 1]:
                continue
            if mode == "strict" and any(last_e.t < o.t < e.t and k not in o.steps for o in mine):
                continue
            extend([*chain, (e, s)])

    for e, s in entries:
        if s == 1:
            extend([(e, s)])
    starts = [e for e, s in entries if s == 1]
    if not starts:
        return None
    level = max(len(c) for c in chains)
    best: dict[int, list[tuple[Ev, int]]] = {}  # per end event: the lexicographically latest
    for c in (c for c in chains if len(c) == level):
        key = c[-1][0].idx
        rank = [(e.t, s) for e, s in reversed(c[:-1])]
        if key not in best or rank > [(e.t, s) for e, s in reversed(best[key][:-1])]:
            best[key] = c

    def clean(c):
        times = [e.t for e, _ in c]
        for x, (a, b) in enumerate(exclusions, start=1):
            if level < a:
                continue
            if level >= b:
                if _x_between(mine, x, times[a - 1], times[b - 1], False):
                    return False
            elif _x_between(mine, x, times[a - 1], times[0] + window, True):
                return False
        return True

    good = [c for c in best.values() if clean(c)]
    excluded = not good
    options = []
    if good:
        t_first = min(c[-1][0].t for c in good)
        for c in good:
            if c[-1][0].t == t_first:
                times = [e.t for e, _ in c]
                options.append(tuple(b - a for a, b in pairwise(times)))
    latest = max(e.t for e in starts)
    pending = level < n and not excluded and latest + window >= end
    return Outcome(level, excluded, pending, options, _first_touch(starts))


def _unordered(mine, n, window, end, exclusions):
    anchors = [e for e in mine if e.steps]
    if not anchors:
        return None
    scored = []
    for a in anchors:
        firsts = {}
        for e in mine:
            if a.t <= e.t <= a.t + window:
                for s in e.steps:
                    firsts[s] = min(firsts.get(s, e.t), e.t)
        scored.append((a, firsts))
    level = max(len(f) for _, f in scored)

    def clean(a, firsts):
        hi, inclusive = (max(firsts.values()), False) if level == n else (a.t + window, True)
        return not any(
            _x_between(mine, x, a.t, hi, inclusive) for x in range(1, len(exclusions) + 1)
        )

    good = [(a, f) for a, f in scored if len(f) == level and clean(a, f)]
    options = []
    if good:
        t_first = min(a.t for a, _ in good)
        for a, f in good:
            if a.t == t_first:
                times = sorted(f.values())
                options.append(tuple(b - a_ for a_, b in pairwise(times)))
    latest = max(a.t for a in anchors)
    pending = level < n and bool(good) and latest + window >= end
    return Outcome(level, not good, pending, options, _first_touch(anchors))


def median(values):
    return statistics.median(values) if values else None
