"""Metrics of binary predictions against their outcomes, vectorised with numpy, defined as
scikit-learn defines them (the tests compare to 1e-9):

- ROC AUC: ``roc_auc_score`` (the Mann-Whitney statistic with mid-ranks for ties);
- PR AUC: ``average_precision_score``: Σₖ (Rₖ - Rₖ₋₁)·Pₖ over the distinct thresholds, no
  interpolation;
- Brier score: ``brier_score_loss``; log loss: ``log_loss`` (probabilities clipped to
  [ε, 1 - ε], ε the float64 machine epsilon);
- ROC curve: ``roc_curve(drop_intermediate=False)`` (at most 200 of its points);
- calibration bins: ``calibration_curve`` (``uniform`` or ``quantile`` edges; a
  probability on an inner edge falls in the bin to its left);
- precision / recall / lift at the top k %: the ⌈k·n/100⌉ highest probabilities (ties
  in the order the rows came: prediction time, then event id).

A metric that is undefined for the pairs (AUC with one class only) is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int64]
EPS = float(np.finfo(np.float64).eps)
Strategy = Literal["uniform", "quantile"]


def roc_auc(y: Labels, p: Floats) -> float | None:
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = midranks(p)
    u = float(ranks[y == 1].sum()) - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


@dataclass(frozen=True, slots=True)
class RocPoint:
    fpr: float
    tpr: float
    threshold: float | None  # None: above every probability (the (0, 0) corner)


def roc_curve(y: Labels, p: Floats, max_points: int = 200) -> list[RocPoint]:
    """``roc_curve(drop_intermediate=False)``: a point per distinct probability, highest
    first, after (0, 0). Longer curves keep ``max_points`` of those points, evenly spaced
    (both ends kept), so every point returned lies on the exact curve."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return []
    order = np.argsort(-p, kind="mergesort")
    scores, hits = p[order], y[order]
    last = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), len(scores) - 1]
    tps = np.cumsum(hits)[last].astype(np.float64)
    fps = (last + 1) - tps
    fpr = np.r_[0.0, fps / negatives]
    tpr = np.r_[0.0, tps / positives]
    thresholds = np.r_[np.inf, scores[last]]
    keep = np.arange(len(fpr))
    if len(keep) > max_points:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, max_points)).astype(np.int64))
    return [
        RocPoint(float(fpr[i]), float(tpr[i]), None if i == 0 else float(thresholds[i]))
        for i in keep
    ]


def midranks(values: Floats) -> Floats:
    """1-based ranks, ties sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(np.r_[starts, len(values)])
    mean_rank = starts + (counts + 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, counts)
    return ranks


def average_precision(y: Labels, p: Floats) -> float | None:
    if len(y) == 0 or int(y.sum()) == 0:
        return None
    order = np.argsort(-p, kind="mergesort")
    scores, hits = p[order], y[order]
    last = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), len(scores) - 1]
    tps = np.cumsum(hits)[last].astype(np.float64)
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return max(0.0, float(np.sum(np.diff(np.r_[0.0, recall]) * precision)))


def brier(y: Labels, p: Floats) -> float | None:
    return float(np.mean((p - y) ** 2)) if len(y) else None


def log_loss(y: Labels, p: Floats) -> float | None:
    if not len(y):
        return None
    yes = np.clip(p, EPS, 1 - EPS)
    no = np.clip(1.0 - p, EPS, 1 - EPS)
    return float(np.mean(-(y * np.log(yes) + (1 - y) * np.log(no))))


@dataclass(frozen=True, slots=True)
class Bin:
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


def calibration(y: Labels, p: Floats, bins: int, strategy: Strategy) -> list[Bin]:
    """The non-empty bins, in order (``calibration_curve``'s ``prob_pred`` and
    ``prob_true`` are their ``mean_predicted`` and ``observed_rate``)."""
    if not len(y):
        return []
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 1, bins + 1) * 100)
    else:
        edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    sums = np.bincount(ids, weights=p, minlength=bins)
    trues = np.bincount(ids, weights=y.astype(np.float64), minlength=bins)
    totals = np.bincount(ids, minlength=bins)
    return [
        Bin(
            lower=float(edges[i]),
            upper=float(edges[i + 1]),
            count=int(totals[i]),
            mean_predicted=float(sums[i] / totals[i]),
            observed_rate=float(trues[i] / totals[i]),
        )
        for i in np.flatnonzero(totals)
    ]


@dataclass(frozen=True, slots=True)
class TopK:
    percent: float
    count: int
    threshold: float | None
    precision: float | None
    recall: float | None
    lift: float | None


def top_k(y: Labels, p: Floats, percents: list[float]) -> list[TopK]:
    n, positives = len(y), int(y.sum())
    order = np.argsort(-p, kind="mergesort")
    hits = np.cumsum(y[order])
    base = positives / n if n else 0.0
    out = []
    for k in percents:
        count = min(n, math.ceil(n * k / 100.0 - 1e-9)) if n else 0
        if count == 0:
            out.append(TopK(k, 0, None, None, None, None))
            continue
        found = int(hits[count - 1])
        precision = found / count
        out.append(
            TopK(
                percent=k,
                count=count,
                threshold=float(p[order[count - 1]]),
                precision=precision,
                recall=found / positives if positives else None,
                lift=precision / base if base else None,
            )
        )
    return out
