"""Validation metrics, from scikit-learn."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score


def binary_metrics(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC and log loss; AUCs are NaN when only one class is present."""
    y_true = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    both = 0 < y_true.sum() < len(y_true)
    return {
        "roc_auc": float(roc_auc_score(y_true, p)) if both else math.nan,
        "pr_auc": float(average_precision_score(y_true, p)) if both else math.nan,
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
        "positive_rate": float(y_true.mean()) if len(y_true) else math.nan,
        "n_users": len(y_true),
    }
