"""The promotion rule: does a new model version take the ``champion`` alias? Pure, no MLflow.

Both the new version and the champion are scored through the same path
(``TrainingData.predict``) on the same validation users and labels; the decision and its numbers
are logged as ``promotion.json``.
"""

from __future__ import annotations

import math

import numpy as np

from behavior_model.config import LABELS
from behavior_model.metrics import label_metrics


def mean_roc_auc(metrics: dict[str, float]) -> float:
    return float(np.mean([metrics[f"{label}_roc_auc"] for label in LABELS]))


def metrics_on_validation(predictor, data) -> dict[str, float]:
    """A predictor's metrics on the validation examples of a training run's ``TrainingData``
    (``behavior_model.training_data``): the new version and the champion alike, each with its
    own vocabulary and text vectors, on the same users and labels."""
    return label_metrics(data.labels("val"), data.predict(predictor, "val"), LABELS)


def choose_family(candidates: dict[str, dict[str, float]]) -> tuple[str, dict[str, float]]:
    """The family whose fit has the best mean validation ROC-AUC (``val_<label>_roc_auc``), and
    every family's mean. Ties go to the family listed first; an undefined (NaN) mean never wins
    over a defined one."""
    if not candidates:
        raise ValueError("no model family was fitted")
    means = {
        family: float(np.mean([m[f"val_{label}_roc_auc"] for label in LABELS]))
        for family, m in candidates.items()
    }
    # max keeps the first of equal keys: the family listed first.
    best = max(means, key=lambda f: (not math.isnan(means[f]), np.nan_to_num(means[f], nan=0.0)))
    return best, means


def decide_promotion(
    new: dict[str, float],
    champion: dict[str, float] | None,
    *,
    margin: float,
    lightgbm: dict[str, float] | None = None,
    lightgbm_margin: float | None = None,
) -> dict:
    """Whether the new version takes the champion alias, and why, with the numbers.

    The first version always becomes champion (scoring needs one). Later versions must reach the
    champion's mean validation ROC-AUC + ``margin`` and, unless ``lightgbm_margin`` is None,
    LightGBM's on the same users + ``lightgbm_margin``.
    """
    new_auc = mean_roc_auc(new)
    out: dict = {"new_mean_roc_auc": new_auc, "margin": margin, "lightgbm_margin": lightgbm_margin}
    beats_lgbm = True
    if lightgbm is not None and lightgbm_margin is not None:
        lgbm_auc = mean_roc_auc(lightgbm)
        beats_lgbm = bool(new_auc >= lgbm_auc + lightgbm_margin)
        out |= {"lightgbm_mean_roc_auc": lgbm_auc, "beats_lightgbm": beats_lgbm}
    if champion is None:
        return out | {"promote": True, "reason": "first version: no champion yet"}
    if math.isnan(new_auc):
        return out | {"promote": False, "reason": "validation ROC-AUC undefined (one class only)"}
    old_auc = mean_roc_auc(champion)
    beats_champion = math.isnan(old_auc) or new_auc >= old_auc + margin
    promote = bool(beats_champion and beats_lgbm)
    reasons = [
        f"new {new_auc:.4f} {'>=' if beats_champion else '<'} champion {old_auc:.4f} + {margin}"
    ]
    if "lightgbm_mean_roc_auc" in out:
        reasons.append(
            f"{'>=' if beats_lgbm else '<'} LightGBM {out['lightgbm_mean_roc_auc']:.4f} + {lightgbm_margin}"
        )
    return out | {
        "promote": promote,
        "champion_mean_roc_auc": old_auc,
        "reason": "; ".join(reasons),
    }
