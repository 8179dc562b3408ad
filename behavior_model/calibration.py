"""Platt scaling per label: p = sigmoid(a * logit + b), fitted on the validation cutoff, with the
intercept moved from the validation cutoff's base rate to a prior given (the base rate pooled over
every labelled cutoff, ``TrainConfig.calibration_prior``).

Why the pooled rate: a base rate moves from month to month (Online Retail's 90-day churn: 0.425,
0.450, 0.455, 0.497 at the four training cutoffs of 2011), and the last labelled cutoff is one
draw of it. Platt's intercept fitted there carries that draw into every later score; the rate
pooled over all labelled cutoffs is the steadier guess for a date whose labels nobody has yet.
The move is the exact prior-shift correction of Bayes' rule: b += logit(prior) - logit(rate).
"""

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


def prior_shift(b: float, rate: float, prior: float) -> float:
    """Platt's intercept ``b`` fitted where the base rate was ``rate``, moved to ``prior``."""
    lo, hi = 1e-6, 1 - 1e-6
    rate, prior = float(np.clip(rate, lo, hi)), float(np.clip(prior, lo, hi))
    return b + float(np.log(prior / (1 - prior)) - np.log(rate / (1 - rate)))


def fit_columns(
    probs: np.ndarray, labels: dict[str, np.ndarray], names, *,
    priors: dict[str, float] | None = None,
) -> list[tuple[float, float]]:  # fmt: skip
    """One Platt (a, b) per column of ``probs``, in the order of ``names`` (LABELS); with
    ``priors`` (a base rate per label name), each intercept moved from the label's rate in
    ``labels`` to its prior (``prior_shift``)."""
    out = []
    for j, name in enumerate(names):
        a, b = fit_platt(probs[:, j], labels[name])
        if priors is not None:
            b = prior_shift(b, float(np.mean(labels[name])), priors[name])
        out.append((a, b))
    return out


def apply_columns(probs: np.ndarray, calibration: list[tuple[float, float]] | None) -> np.ndarray:
    """``probs`` (n, labels) calibrated column by column; unchanged when ``calibration`` is None."""
    if calibration is None:
        return probs
    return np.stack(
        [apply_platt(probs[:, j], a, b) for j, (a, b) in enumerate(calibration)], axis=1
    )


def shift_to_rate(p: np.ndarray, rate: float) -> np.ndarray:
    """``p`` with one offset added to every logit so that the mean probability is ``rate``: the
    best a pure base-rate correction can do (the evaluation's known-rate diagnostic; what is
    left of the ECE after it is a slope or shape error, not a prior). Ranking is unchanged."""
    lo, hi = -20.0, 20.0  # the mean is increasing in the offset: bisect
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.mean(apply_platt(p, 1.0, mid)) < rate else (lo, mid)
    return apply_platt(p, 1.0, (lo + hi) / 2)
