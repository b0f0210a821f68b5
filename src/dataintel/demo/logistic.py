"""A small logistic regression (Newton's method with an L2 penalty), the demo AI engine's
model. NumPy only: the service does not depend on an ML library at run time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class Logistic:
    mean: Matrix
    scale: Matrix
    weights: Matrix  # intercept first

    def predict(self, x: Matrix) -> Matrix:
        z = self._design(x) @ self.weights
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))), dtype=np.float64)

    def _design(self, x: Matrix) -> Matrix:
        standard = (x - self.mean) / self.scale
        return np.hstack([np.ones((len(x), 1)), standard])


def fit(x: Matrix, y: Matrix, l2: float = 1.0, iterations: int = 25) -> Logistic:
    """Maximum penalised likelihood (the intercept is not penalised)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = Logistic(mean, scale, np.zeros(x.shape[1] + 1))
    design = model._design(x)
    penalty = np.eye(design.shape[1]) * l2
    penalty[0, 0] = 0.0
    w = model.weights
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
        gradient = design.T @ (p - y) + penalty @ w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian, gradient)
        w = w - step
        if float(np.abs(step).max()) < 1e-8:
            break
    return Logistic(mean, scale, w)
