"""Distribution drift between a reference and a current sample, as pure functions.

Bins are the reference's quantiles (``bins`` equal-frequency bins; repeated edges merge),
with open outer bins so every current value falls in one. PSI = Σ (c - r) · ln(c / r) over
the bins' shares, each share floored at ``EPSILON`` (an empty bin would make it infinite);
Jensen-Shannon distance = sqrt of the JS divergence in base 2 (0 identical … 1 disjoint),
as ``scipy.spatial.distance.jensenshannon(r, c, base=2)``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

EPSILON = 1e-4  # Evidently's floor for an empty bin's share


def quantile_edges(reference: Sequence[float], bins: int) -> list[float]:
    """The inner bin edges: the reference's 1/bins … (bins-1)/bins quantiles (linear
    interpolation, numpy's default), duplicates removed."""
    ordered = sorted(reference)
    if not ordered:
        return []
    edges: list[float] = []
    for k in range(1, bins):
        position = (len(ordered) - 1) * k / bins
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        edge = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
        if not edges or edge > edges[-1]:
            edges.append(edge)
    return edges


def shares(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    """The share of ``values`` in each bin: (-∞, e1], (e1, e2], …, (ek, ∞)."""
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect.bisect_left(edges, v)] += 1
    total = max(len(values), 1)
    return [c / total for c in counts]


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Population stability index of two binned shares (same bins)."""
    total = 0.0
    for r, c in zip(reference, current, strict=True):
        r, c = max(r, EPSILON), max(c, EPSILON)
        total += (c - r) * math.log(c / r)
    return total


def jensen_shannon(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2) of two binned shares."""
    divergence = 0.0
    for r, c in zip(reference, current, strict=True):
        m = (r + c) / 2
        if r > 0:
            divergence += r * math.log2(r / m) / 2
        if c > 0:
            divergence += c * math.log2(c / m) / 2
    return math.sqrt(max(divergence, 0.0))
