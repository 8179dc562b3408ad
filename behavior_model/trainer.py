"""The training loop: cutoffs, next-event pre-training, fine-tuning of the churn and purchase
heads, best-epoch restore and Platt calibration. Plain PyTorch, no I/O: ``fit_event_transformer``
takes a ``behavior_model.training_data.TrainingData`` (the lake's shards, or examples built in
memory by ``families.fit`` from events) and returns a trained predictor with its validation
results. ``behavior_model.families`` dispatches between this family, the pretrained LM and the
hybrid (which fits this loop on user folds).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from behavior_model.calibration import fit_columns
from behavior_model.config import LABELS, TrainConfig
from behavior_model.data import Examples, collate
from behavior_model.fitted import (
    TrainedModel,
    calibration_priors,
    reference_of,
    resolve_device,
    trained_model,
    val_metric_dict,
)
from behavior_model.model import BehaviorModel
from behavior_model.predictor import BehaviorPredictor
from behavior_model.training_data import TrainingData
from pipeline.contracts import FEATURE_NAMES

log = logging.getLogger(__name__)


def cutoffs_for(
    first: pd.Timestamp, last: pd.Timestamp, cfg: TrainConfig, *, as_of: date | None = None
) -> tuple[list[pd.Timestamp], pd.Timestamp]:
    """Training cutoffs and the validation cutoff (midnights, UTC) for data whose first and last
    events are at ``first`` and ``last`` (UTC).

    Data ends at the midnight after the last event (or after ``as_of``). Validation is the latest
    midnight whose labels are complete: T_val + max(H) <= data end. Training cutoffs step back from
    T_val - max(H), so their label windows end before validation starts.
    """
    last_day = pd.Timestamp(last).floor("D")
    if as_of is not None:
        last_day = min(last_day, pd.Timestamp(as_of, tz="UTC"))
    data_end = last_day + pd.Timedelta(days=1)
    first = pd.Timestamp(first).floor("D")
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


def choose_cutoffs(
    events: pd.DataFrame, cfg: TrainConfig, *, as_of: date | None = None
) -> tuple[list[pd.Timestamp], pd.Timestamp]:
    """``cutoffs_for`` the span of ``events``."""
    if events.empty:
        raise ValueError("no events to train on")
    return cutoffs_for(events["event_time"].min(), events["event_time"].max(), cfg, as_of=as_of)


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


def fit_event_transformer(
    data: TrainingData,
    cfg: TrainConfig,
    *,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
) -> TrainedModel:
    """Pre-train, fine-tune, keep the best epoch, calibrate on the validation cutoff and store the
    drift reference: the event transformer's loop over any ``TrainingData`` (shards or memory).
    ``behavior_model.families.fit_data`` dispatches every family (``cfg.model.backbone``)."""
    if cfg.model.backbone != "event_transformer":
        raise ValueError(
            f"backbone {cfg.model.backbone!r} is not the event transformer: fit it with "
            "behavior_model.families.fit_data"
        )
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    vocab = data.vocab
    val_labels = data.labels("val")
    model_cfg = replace(cfg.model, context_dim=len(FEATURE_NAMES) if cfg.model.use_context else 0)
    model = BehaviorModel(
        model_cfg, n_item_tokens=vocab.n_item_tokens, n_categories=vocab.n_categories
    )
    if model.context_mlp is not None:
        mean, std = data.context_stats()
        model.context_mean.copy_(torch.from_numpy(mean))
        model.context_std.copy_(torch.from_numpy(std))
    model.to(device)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )
    predictor = BehaviorPredictor(
        model, vocab=vocab, labels=cfg.labels, text_model_path=cfg.text_model_path
    )
    log.info(
        "training on %d cutoffs, validating on %d users at %s, device %s",
        len(data.train_cutoffs), len(val_labels["churn"]), data.val_cutoff.date(), device,
    )  # fmt: skip
    history: list[dict[str, float]] = []
    best: tuple[float, dict | None] = (-np.inf, None)
    step = 0

    def run_epochs(n: int, loss_of: Callable[[dict], torch.Tensor], phase: str) -> None:
        nonlocal step, best
        opt = torch.optim.AdamW(
            model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        batches = data.train_batches(replace(cfg, model=model_cfg))
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.learning_rate, total_steps=max(1, n * len(batches))
        )
        for epoch in range(n):
            model.train()
            total, count = 0.0, 0
            for batch in batches.epoch(epoch):
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
                    metrics |= val_metric_dict(val_labels, data.predict(predictor, "val"))
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
        generator = torch.Generator().manual_seed(cfg.seed)

        def pretrain_loss(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            loss = model.pretrain_loss(batch)
            if cfg.contrastive_weight:
                loss = loss + cfg.contrastive_weight * model.contrastive_loss(
                    batch, temperature=cfg.contrastive_temperature, generator=generator
                )
            return loss

        run_epochs(cfg.pretrain_epochs, pretrain_loss, "pretrain")
    run_epochs(cfg.epochs, lambda b: model(b, b["targets"])[1], "train")
    if cfg.restore_best_epoch and best[1] is not None:
        model.load_state_dict(best[1])

    with autocast:
        raw_val = data.predict(predictor, "val")
    if cfg.calibrate:
        predictor.calibration = fit_columns(
            raw_val, val_labels, LABELS, priors=calibration_priors(data, cfg)
        )
    model.to("cpu")
    val_probs = data.predict(predictor, "val")
    # The drift reference: the users eligible on the last day of data, as the model scores them.
    predictor.reference = reference_of(data.table("latest"), data.predict(predictor, "latest"))
    return trained_model(predictor, data, val_labels, raw_val, val_probs, history)
