"""Evaluation metrics (scikit-learn where it has them), under stable names.

The protocol's set: ROC-AUC with a bootstrap 95% interval, PR-AUC, log loss, Brier score, expected
calibration error (10 equal-width bins) and lift in the top decile.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def expected_calibration_error(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> float:
    """Sum over equal-width probability bins of |mean(y) - mean(p)| weighted by the bin's share."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(total)


def lift_top_decile(y: np.ndarray, p: np.ndarray) -> float:
    """Positive rate among the 10% highest scores divided by the overall positive rate."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    if len(y) == 0 or y.mean() == 0:
        return math.nan
    k = max(1, int(math.ceil(0.1 * len(y))))
    top = np.argsort(-p, kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def bootstrap_auc_interval(
    y: np.ndarray, p: np.ndarray, *, n: int = 200, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of ROC-AUC over ``n`` bootstrap resamples of the users."""
    rng = np.random.default_rng(seed)
    y, p = np.asarray(y), np.asarray(p)
    aucs = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            aucs.append(roc_auc_score(y[i], p[i]))
    if not aucs:
        return math.nan, math.nan
    return float(np.percentile(aucs, 2.5)), float(np.percentile(aucs, 97.5))


def paired_auc_difference(
    y: np.ndarray, p_model: np.ndarray, p_reference: np.ndarray, *, n: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """ROC-AUC(p_model) - ROC-AUC(p_reference) on the same users, and its 95% percentile interval
    over ``n`` paired bootstrap resamples (both models scored on the same resampled users, so the
    users' shared difficulty cancels: far narrower than comparing two separate intervals).

    Two-dimensional inputs (users x labels) give the difference of the mean ROC-AUC over the
    labels, every label resampled on the same users. NaN where a label has one class only."""
    rng = np.random.default_rng(seed)
    y, a, b = (np.asarray(x).reshape(len(x), -1) for x in (y, p_model, p_reference))

    def mean_auc(i, p) -> float:
        return float(np.mean([roc_auc_score(y[i, j], p[i, j]) for j in range(y.shape[1])]))

    def defined(i) -> bool:
        return bool(np.all((0 < y[i].sum(axis=0)) & (y[i].sum(axis=0) < len(i))))

    everyone = np.arange(len(y))
    if not defined(everyone):
        return math.nan, math.nan, math.nan
    diff = mean_auc(everyone, a) - mean_auc(everyone, b)
    diffs = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if defined(i):
            diffs.append(mean_auc(i, a) - mean_auc(i, b))
    if not diffs:
        return diff, math.nan, math.nan
    return diff, float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def binary_metrics(y_true: np.ndarray, p: np.ndarray, *, bootstrap: int = 0) -> dict[str, float]:
    """All metrics for one label; AUCs are NaN when only one class is present."""
    y_true = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    both = 0 < y_true.sum() < len(y_true)
    out = {
        "n_users": len(y_true),
        "positive_rate": float(y_true.mean()) if len(y_true) else math.nan,
        "roc_auc": float(roc_auc_score(y_true, p)) if both else math.nan,
        "pr_auc": float(average_precision_score(y_true, p)) if both else math.nan,
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y_true, p)),
        "ece": expected_calibration_error(y_true, p),
        "lift_top_decile": lift_top_decile(y_true, p),
    }
    if bootstrap:
        out["roc_auc_low"], out["roc_auc_high"] = bootstrap_auc_interval(y_true, p, n=bootstrap)
    return out


def label_metrics(
    labels: dict[str, np.ndarray], probs: np.ndarray, names, *, prefix: str = ""
) -> dict[str, float]:
    """``binary_metrics`` per label: column j of ``probs`` against ``labels[names[j]]``, named
    ``<prefix><label>_<metric>``."""
    out: dict[str, float] = {}
    for j, label in enumerate(names):
        for k, v in binary_metrics(labels[label], probs[:, j]).items():
            out[f"{prefix}{label}_{k}"] = float(v)
    return out
