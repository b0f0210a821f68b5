"""The intervals of the holdout comparison (docs/analytics-revenue.md, "Uplift"):

- a recovery rate: the Wilson score interval;
- the difference of two rates: Newcombe's hybrid score interval (Newcombe 1998, method 10),
  built from the two Wilson intervals; it stays inside [-1, 1] and behaves at 0 % and
  100 %, where the Wald interval collapses;
- the difference of two means (revenue per cart): Welch's t interval with the
  Welch-Satterthwaite degrees of freedom (unequal variances and group sizes).

Pure Python (``math`` only): the Student t quantile is found by bisection on its CDF,
which is the regularised incomplete beta function evaluated by Lentz's continued fraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


def normal_quantile(p: float) -> float:
    """Φ⁻¹(p) by bisection on Φ (to the last bit)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    low, high = -40.0, 40.0
    for _ in range(200):
        mid = (low + high) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < p:
            low = mid
        else:
            high = mid
        if high - low <= 4 * math.ulp(mid):
            break
    return (low + high) / 2


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz; Numerical Recipes' betacf)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, _nonzero(1.0 - qab * x / qap)
    d = 1.0 / d
    h = d
    for m in range(1, 10_000):
        even = m * (b - m) * x / ((qam + 2 * m) * (a + 2 * m))
        odd = -(a + m) * (qab + m) * x / ((a + 2 * m) * (qap + 2 * m))
        step = 1.0
        for term in (even, odd):
            d = 1.0 / _nonzero(1.0 + term * d)
            c = _nonzero(1.0 + term / c)
            step = d * c
            h *= step
        if abs(step - 1.0) < 1e-16:
            break
    return h


def _nonzero(value: float) -> float:
    return value if abs(value) > 1e-300 else 1e-300


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom."""
    square = t * t
    if square > df:  # x = df / (df + t²) < 1/2: the fraction converges as it is
        tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + square))
    else:  # t² / (df + t²) computed as such, not as 1 - x (which loses the digits)
        tail = 0.5 - 0.5 * incomplete_beta(0.5, df / 2.0, square / (df + square))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on ``t_cdf``)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if df >= 1e5:  # lgamma's cancellation would cost digits: expand around the normal
        return _cornish_fisher(normal_quantile(p), df)
    low, high = -1.0, 1.0
    while t_cdf(low, df) > p:
        low *= 2.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 4 * math.ulp(mid) + 1e-300:
            break
    return (low + high) / 2


def _cornish_fisher(z: float, df: float) -> float:
    """The t quantile from the normal one (Abramowitz & Stegun 26.7.5), error O(df⁻⁴)."""
    z2 = z * z
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
    return z + g1 / df + g2 / df**2 + g3 / df**3


def wilson(successes: int, n: int, z: float) -> Interval | None:
    """Wilson's score interval of a proportion (None without observations)."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe(x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE) -> Interval | None:
    """Newcombe's hybrid score interval of p1 - p2."""
    z = normal_quantile(0.5 + confidence / 2)
    first, second = wilson(x1, n1, z), wilson(x2, n2, z)
    if first is None or second is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    diff = p1 - p2
    low = diff - math.sqrt((p1 - first.low) ** 2 + (second.high - p2) ** 2)
    high = diff + math.sqrt((first.high - p1) ** 2 + (p2 - second.low) ** 2)
    return Interval(low, high)


@dataclass(frozen=True, slots=True)
class Welch:
    difference: float
    interval: Interval | None
    df: float | None
    std_error: float | None


def welch(
    mean1: float,
    var1: float,
    n1: int,
    mean2: float,
    var2: float,
    n2: int,
    confidence: float = CONFIDENCE,
) -> Welch:
    """Welch's t interval of mean1 - mean2 (sample variances, ``ddof=1``). No interval
    with fewer than two observations in a group, or when both groups are constant."""
    diff = mean1 - mean2
    if n1 < 2 or n2 < 2:
        return Welch(diff, None, None, None)
    a, b = var1 / n1, var2 / n2
    se = math.sqrt(a + b)
    if se == 0.0:
        return Welch(diff, None, None, 0.0)
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    t = t_quantile(0.5 + confidence / 2, df)
    return Welch(diff, Interval(diff - t * se, diff + t * se), df, se)
