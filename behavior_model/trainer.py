"""The training loop: cutoffs, examples, next-event pre-training, fine-tuning of the churn and
purchase heads, best-epoch restore and Platt calibration. Plain PyTorch, no I/O: ``fit`` takes
events and returns a trained predictor with its validation results.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from behavior_model.calibration import fit_platt
from behavior_model.config import LABELS, TrainConfig
from behavior_model.data import (
    Examples,
    build_examples,
    build_vocabulary,
    collate,
    concat_examples,
    make_text_table,
)
from behavior_model.features import rfm_features
from behavior_model.metrics import binary_metrics
from behavior_model.model import BehaviorModel
from behavior_model.monitoring import build_reference
from behavior_model.predictor import BehaviorPredictor
from behavior_model.text import TextEmbedder

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def choose_cutoffs(
    events: pd.DataFrame, cfg: TrainConfig, *, as_of: date | None = None
) -> tuple[list[pd.Timestamp], pd.Timestamp]:
    """Training cutoffs and the validation cutoff (midnights, UTC).

    Data ends at the midnight after the last event (or after ``as_of``). Validation is the latest
    midnight whose labels are complete: T_val + max(H) <= data end. Training cutoffs step back from
    T_val - max(H), so their label windows end before validation starts.
    """
    if events.empty:
        raise ValueError("no events to train on")
    last_day = events["event_time"].max().floor("D")
    if as_of is not None:
        last_day = min(last_day, pd.Timestamp(as_of, tz="UTC"))
    data_end = last_day + pd.Timedelta(days=1)
    first = events["event_time"].min().floor("D")
    horizon = pd.Timedelta(
        days=max(cfg.labels.purchase_horizon_days, cfg.labels.churn_horizon_days)
    )
    val = data_end - horizon
    train = [
        val - horizon - pd.Timedelta(days=k * cfg.cutoff_step_days)
        for k in range(cfg.n_train_cutoffs)
    ]
    # A cutoff needs at least a week of history behind it to say anything.
    train = sorted(t for t in train if t >= first + pd.Timedelta(days=7))
    if not train:
        raise ValueError(
            f"not enough history: data {first.date()}..{last_day.date()} leaves no training cutoff "
            f"before the validation cutoff {val.date()} (horizon {horizon.days} days)"
        )
    return train, val


@dataclass
class TrainedModel:
    predictor: BehaviorPredictor
    train_cutoffs: list[pd.Timestamp]
    val_cutoff: pd.Timestamp
    val_examples: Examples
    val_probabilities: np.ndarray
    val_metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


def reference_of(events: pd.DataFrame, ex: Examples, probs: np.ndarray) -> dict:
    """The drift reference stored with the model: RFM inputs and calibrated scores of the users
    in ``ex`` (training passes the users eligible on its last day of data).

    The inputs are recomputed in float64 as scoring computes them, not read back from the float32
    context: counts like 2.0 would come back as 1.9999998 and fall on the other side of a decile
    edge, a drift of nothing.
    """
    cutoff = pd.Timestamp(ex.cutoff[0], tz="UTC") if len(ex) else None
    inputs = rfm_features(events, cutoff, ex.user_id)
    scores = pd.DataFrame({f"{label}_probability": probs[:, j] for j, label in enumerate(LABELS)})
    return build_reference(
        inputs, scores, described=f"{len(ex)} users eligible at {cutoff and cutoff.date()}"
    )


def make_loader(
    ex: Examples, cfg: TrainConfig, device: torch.device, *, shuffle: bool
) -> DataLoader:
    return DataLoader(
        list(range(len(ex))),
        batch_size=cfg.batch_size,
        shuffle=shuffle,
        collate_fn=lambda idx: collate(ex, idx),
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def val_metric_dict(ex: Examples, probs: np.ndarray) -> dict[str, float]:
    """Stable metric names: val_<label>_<metric>."""
    out: dict[str, float] = {}
    for j, label in enumerate(LABELS):
        y = ex.churn if label == "churn" else ex.purchase
        for k, v in binary_metrics(y, probs[:, j]).items():
            out[f"val_{label}_{k}"] = float(v)
    return out


def fit(
    events: pd.DataFrame,
    cfg: TrainConfig,
    *,
    as_of: date | None = None,
    train_cutoffs: list[pd.Timestamp] | None = None,
    val_cutoff: pd.Timestamp | None = None,
    embedder: TextEmbedder | None = None,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
) -> TrainedModel:
    """Train on ``events`` (canonical columns) and evaluate on the validation cutoff.

    Cutoffs default to ``choose_cutoffs``; the evaluation protocol passes its own.
    """
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    if as_of is not None:
        events = events[events["event_time"] < pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)]
    if train_cutoffs is None or val_cutoff is None:
        train_cutoffs, val_cutoff = choose_cutoffs(events, cfg, as_of=as_of)
    inputs = events[events["event_time"] < val_cutoff]  # vocabulary sees no label period
    vocab = build_vocabulary(inputs, cfg.model)
    if cfg.model.use_text and embedder is None:
        embedder = TextEmbedder(cfg.text_model_path)
    text_index, table = make_text_table(inputs, embedder if cfg.model.use_text else None)
    common = dict(
        labels=cfg.labels, model=cfg.model, vocab=vocab, text_index=text_index, text_table=table
    )
    train_ex = concat_examples([build_examples(events, t, **common) for t in train_cutoffs])
    val_ex = build_examples(events, val_cutoff, **common)
    log.info(
        "training on %d examples (%d cutoffs), validating on %d users at %s, device %s",
        len(train_ex), len(train_cutoffs), len(val_ex), val_cutoff.date(), device,
    )  # fmt: skip

    model_cfg = replace(
        cfg.model, context_dim=train_ex.context.shape[1] if cfg.model.use_context else 0
    )
    model = BehaviorModel(
        model_cfg, n_item_tokens=vocab.n_item_tokens, n_categories=vocab.n_categories
    )
    if model.context_mlp is not None:
        model.context_mean.copy_(torch.from_numpy(train_ex.context.mean(0)))
        model.context_std.copy_(torch.from_numpy(train_ex.context.std(0) + 1e-6))
    model.to(device)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )
    predictor = BehaviorPredictor(
        model, vocab=vocab, labels=cfg.labels, text_model_path=cfg.text_model_path
    )
    history: list[dict[str, float]] = []
    best: tuple[float, dict | None] = (-np.inf, None)
    step = 0

    def run_epochs(n: int, loss_of: Callable[[dict], torch.Tensor], phase: str) -> None:
        nonlocal step, best
        opt = torch.optim.AdamW(
            model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        batches = make_loader(train_ex, cfg, device, shuffle=True)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.learning_rate, total_steps=max(1, n * len(batches))
        )
        for epoch in range(n):
            model.train()
            total, count = 0.0, 0
            for batch in batches:
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                with autocast:
                    loss = loss_of(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                total += loss.item() * len(batch["lengths"])
                count += len(batch["lengths"])
            metrics = {f"{phase}_loss": total / max(count, 1)}
            if phase == "train":
                with autocast:
                    metrics |= val_metric_dict(val_ex, predictor.predict_examples(val_ex))
                score = float(
                    np.nanmean([metrics["val_churn_roc_auc"], metrics["val_purchase_roc_auc"]])
                )
                if score > best[0]:
                    best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()})
            history.append({"epoch": epoch, **metrics})
            if on_epoch is not None:
                on_epoch(metrics, step)
            step += 1
            log.info("%s epoch %d: %s", phase, epoch, json.dumps(metrics))

    if cfg.pretrain_epochs:
        run_epochs(cfg.pretrain_epochs, model.pretrain_loss, "pretrain")
    run_epochs(cfg.epochs, lambda b: model(b, b["targets"])[1], "train")
    if cfg.restore_best_epoch and best[1] is not None:
        model.load_state_dict(best[1])

    with autocast:
        raw_val = predictor.predict_examples(val_ex)
    uncalibrated = val_metric_dict(val_ex, raw_val)
    if cfg.calibrate:
        labels = {"churn": val_ex.churn, "purchase": val_ex.purchase}
        predictor.calibration = [
            fit_platt(raw_val[:, j], labels[name]) for j, name in enumerate(LABELS)
        ]
    model.to("cpu")
    val_probs = predictor.predict_examples(val_ex)
    # The drift reference: the users eligible on the last day of data, as the model scores them.
    data_end = events["event_time"].max().floor("D") + pd.Timedelta(days=1)
    latest = build_examples(events, data_end, **common, with_labels=False)
    predictor.reference = reference_of(events, latest, predictor.predict_examples(latest))
    val_metrics = val_metric_dict(val_ex, val_probs)
    val_metrics |= {f"{k}_uncalibrated": v for k, v in uncalibrated.items() if k.endswith("_ece")}
    return TrainedModel(
        predictor=predictor,
        train_cutoffs=train_cutoffs,
        val_cutoff=val_cutoff,
        val_examples=val_ex,
        val_probabilities=val_probs,
        val_metrics=val_metrics,
        history=history,
    )
