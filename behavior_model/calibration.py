"""Platt scaling per label: p = sigmoid(a * logit + b), fitted on the validation cutoff."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_platt(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising log loss of sigmoid(a * logit(p) + b); identity if y has one class."""
    y = np.asarray(y)
    if y.min() == y.max():
        return 1.0, 0.0
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(logit(p)[:, None], y)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    if a <= 0:
        # A non-positive slope would invert the ranking on the very data it was fitted on (and
        # flatter a useless model there); such a model has no ranking power: predict the base rate.
        rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        return 0.0, float(np.log(rate / (1 - rate)))
    return a, b


def apply_platt(p: np.ndarray, a: float, b: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(a * logit(p) + b)))


def fit_columns(
    probs: np.ndarray, labels: dict[str, np.ndarray], names
) -> list[tuple[float, float]]:
    """One Platt (a, b) per column of ``probs``, in the order of ``names`` (LABELS)."""
    return [fit_platt(probs[:, j], labels[name]) for j, name in enumerate(names)]


def apply_columns(probs: np.ndarray, calibration: list[tuple[float, float]] | None) -> np.ndarray:
    """``probs`` (n, labels) calibrated column by column; unchanged when ``calibration`` is None."""
    if calibration is None:
        return probs
    return np.stack(
        [apply_platt(probs[:, j], a, b) for j, (a, b) in enumerate(calibration)], axis=1
    )
