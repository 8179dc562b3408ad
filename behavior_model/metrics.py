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


class RankedScores:
    """One label's scores sorted once, for ROC-AUC under any resampling of the users.

    A bootstrap resample is a count per user (how often it was drawn), and ROC-AUC with counts is
    a pass over the scores in sorted order: per group of tied scores, the drawn positives times the
    drawn negatives below the group plus half of those tied with it. That is O(users) per resample
    where ``roc_auc_score`` sorts again, and equal to it on the resampled users (ties included).
    """

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        order = np.argsort(np.asarray(p), kind="stable")
        sorted_p = np.asarray(p)[order]
        self.order = order
        self.positive = np.asarray(y, dtype=float)[order]
        group = np.concatenate([[0], np.cumsum(sorted_p[1:] != sorted_p[:-1])])
        self.group = group if len(group) and group[-1] < len(group) - 1 else None  # None: no ties

    def auc(self, counts: np.ndarray) -> float:
        """ROC-AUC of the users drawn ``counts[u]`` times each (NaN with one class drawn)."""
        w = np.asarray(counts, dtype=float)[self.order]
        pos = w * self.positive
        if self.group is not None:
            w, pos = np.bincount(self.group, weights=w), np.bincount(self.group, weights=pos)
        neg = w - pos
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos == 0 or n_neg == 0:
            return math.nan
        below = np.cumsum(neg) - neg
        return float(np.dot(pos, below + 0.5 * neg) / (n_pos * n_neg))


def _resample_counts(rng: np.random.Generator, n_users: int) -> np.ndarray:
    """How often each user is drawn in one bootstrap resample of ``n_users`` draws."""
    return np.bincount(rng.integers(0, n_users, n_users), minlength=n_users)


def bootstrap_auc_interval(
    y: np.ndarray, p: np.ndarray, *, n: int = 200, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of ROC-AUC over ``n`` bootstrap resamples of the users."""
    rng = np.random.default_rng(seed)
    ranked = RankedScores(y, p)
    aucs = [ranked.auc(_resample_counts(rng, len(ranked.order))) for _ in range(n)]
    aucs = [a for a in aucs if not math.isnan(a)]
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
    labels, every label resampled on the same users. NaN where a label has one class only.
    Each model's scores are sorted once (``RankedScores``): a resample costs O(users), so a
    million validation users take seconds, not minutes."""
    rng = np.random.default_rng(seed)
    y, a, b = (np.asarray(x).reshape(len(x), -1) for x in (y, p_model, p_reference))
    ranked = [
        (RankedScores(y[:, j], a[:, j]), RankedScores(y[:, j], b[:, j])) for j in range(y.shape[1])
    ]

    def difference(counts: np.ndarray) -> float:
        return float(np.mean([m.auc(counts) - r.auc(counts) for m, r in ranked]))

    diff = difference(np.ones(len(y)))
    if math.isnan(diff):
        return math.nan, math.nan, math.nan
    diffs = [difference(_resample_counts(rng, len(y))) for _ in range(n)]
    diffs = [d for d in diffs if not math.isnan(d)]
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
