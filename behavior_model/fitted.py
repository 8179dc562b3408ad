"""What fitting any model family returns, and what every family's loop shares: the device, the
validation metric names. Below the trainers (``trainer`` for the event transformer, ``lm`` for
the pretrained LM), so neither imports the other's module for them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from behavior_model.config import LABELS
from behavior_model.metrics import label_metrics
from behavior_model.monitoring import build_reference
from behavior_model.training_data import TrainingData
from pipeline.contracts import FEATURE_NAMES


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class TrainedModel:
    # A BehaviorPredictor, or an LMPredictor (behavior_model.lm).
    predictor: object
    train_cutoffs: list[pd.Timestamp]
    val_cutoff: pd.Timestamp
    # What it was trained on: val tables, predictions of other versions (promotion, baselines).
    data: TrainingData
    # The validation users' probabilities (calibrated) and, before calibration, ``val_raw``: the
    # last pass of the fit over them, which the run's report and promotion reuse.
    val_probabilities: np.ndarray
    val_raw: np.ndarray
    val_metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    # Where a run fitted several families (train.fit_families): each one's mean validation
    # ROC-AUC and lead over the choice it was weighed against (promotion.choose_family).
    families: dict[str, dict] = field(default_factory=dict)


def calibration_priors(data: TrainingData, cfg) -> dict[str, float] | None:
    """The base rates Platt's intercepts move to (``TrainConfig.calibration_prior``): pooled over
    the training and validation examples, or None (the validation cutoff's own)."""
    if cfg.calibration_prior == "validation":
        return None
    if cfg.calibration_prior != "pooled":
        raise ValueError(f"calibration_prior {cfg.calibration_prior!r}: 'pooled' or 'validation'")
    train, val = data.labels("train"), data.labels("val")
    return {
        label: float(np.concatenate([train[label], val[label]]).astype(float).mean())
        for label in LABELS
    }


def val_metric_dict(labels: dict[str, np.ndarray], probs: np.ndarray) -> dict[str, float]:
    """Stable metric names: val_<label>_<metric>."""
    return label_metrics(labels, probs, LABELS, prefix="val_")


def trained_model(
    predictor, data: TrainingData, val_labels: dict[str, np.ndarray], raw_val: np.ndarray,
    val_probs: np.ndarray, history: list[dict[str, float]],
) -> TrainedModel:  # fmt: skip
    """What a family's fit returns: validation metrics of the (calibrated) ``val_probs``, plus
    the ECE of the uncalibrated ``raw_val`` (``*_ece_uncalibrated``)."""
    uncalibrated = val_metric_dict(val_labels, raw_val)
    val_metrics = val_metric_dict(val_labels, val_probs)
    val_metrics |= {f"{k}_uncalibrated": v for k, v in uncalibrated.items() if k.endswith("_ece")}
    return TrainedModel(
        predictor=predictor,
        train_cutoffs=data.train_cutoffs,
        val_cutoff=data.val_cutoff,
        data=data,
        val_probabilities=val_probs,
        val_raw=raw_val,
        val_metrics=val_metrics,
        history=history,
    )


def reference_of(latest: pd.DataFrame, probs: np.ndarray) -> dict:
    """The drift reference stored with the model: RFM inputs (raw, float64: what scoring reads
    from its shard, so a count of 2.0 is not 1.9999998 on the other side of a decile edge) and
    calibrated scores of the users eligible on the last day of data."""
    cutoff = pd.Timestamp(latest["cutoff"].iloc[0]).date() if len(latest) else None
    scores = pd.DataFrame({f"{label}_probability": probs[:, j] for j, label in enumerate(LABELS)})
    return build_reference(
        latest[list(FEATURE_NAMES)].reset_index(drop=True), scores,
        described=f"{len(latest)} users eligible at {cutoff}",
    )  # fmt: skip
