"""Quality scores (reference A.7, Dataplex / Pointblank / Soda; docs/quality.md).

- per check: ``s = passing / total`` for a row-level rule, 0 or 1 for an aggregate one
  (freshness) - both stored as the result's ``pass_fraction``;
- per dimension: ``100 * sum(w * s) / sum(w)`` over its checks (``w``: the rule's weight);
- overall: the mean of the dimensions that have checks;
- a check that errored, or had no rows to judge (``pass_fraction`` null), is left out and
  counted apart (``errored``, ``not_evaluated``): never scored as 0 or 100.
Scores are rounded to two decimals, as Dataplex shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Check:
    dimension: str
    weight: float
    status: str  # pass | fail | error
    pass_fraction: float | None


@dataclass(frozen=True, slots=True)
class Score:
    score: float | None
    dimensions: dict[str, float] = field(default_factory=dict)
    checks: int = 0  # scored
    errored: int = 0
    not_evaluated: int = 0


def score(checks: Iterable[Check]) -> Score:
    sums: dict[str, tuple[float, float]] = {}
    errored = not_evaluated = scored = 0
    for check in checks:
        if check.status == "error":
            errored += 1
            continue
        if check.pass_fraction is None:
            not_evaluated += 1
            continue
        weighted, weights = sums.get(check.dimension, (0.0, 0.0))
        sums[check.dimension] = (
            weighted + check.weight * check.pass_fraction,
            weights + check.weight,
        )
        scored += 1
    dimensions = {d: round(100 * w / total, 2) for d, (w, total) in sorted(sums.items())}
    overall = round(sum(dimensions.values()) / len(dimensions), 2) if dimensions else None
    return Score(overall, dimensions, scored, errored, not_evaluated)
