"""Every model family behind one call. ``fit_data`` fits the family ``cfg.model.backbone`` names
on any ``TrainingData`` (the lake's shards in a training run, ``MemoryData`` in the evaluation
protocol): the event transformer (``trainer``), the pretrained LM (``lm``) or the hybrid
(``hybrid``, which fits the event transformer on user folds). ``fit`` builds the examples from
events in memory first. Above the three families' modules, so none of them imports another's
dispatch.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd

from behavior_model.config import BACKBONES, TrainConfig
from behavior_model.fitted import TrainedModel
from behavior_model.text import TextEmbedder
from behavior_model.trainer import choose_cutoffs, fit_event_transformer
from behavior_model.training_data import MemoryData, TrainingData


def fit_data(
    data: TrainingData,
    cfg: TrainConfig,
    *,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
) -> TrainedModel:
    """The family ``cfg.model.backbone`` fitted on ``data``: validation metrics, calibration and
    drift reference included. ``on_epoch`` receives each epoch's metrics."""
    backbone = cfg.model.backbone
    if backbone == "event_transformer":
        return fit_event_transformer(data, cfg, on_epoch=on_epoch)
    if backbone == "pretrained_lm":
        from behavior_model.lm import fit_lm

        return fit_lm(data, cfg, on_epoch=on_epoch)
    if backbone == "hybrid":
        from behavior_model.hybrid import fit_hybrid

        return fit_hybrid(data, cfg, on_epoch=on_epoch)
    raise ValueError(f"unknown backbone {backbone!r}: one of {list(BACKBONES)}")


def fit(
    events: pd.DataFrame,
    cfg: TrainConfig,
    *,
    as_of: date | None = None,
    train_cutoffs: list[pd.Timestamp] | None = None,
    val_cutoff: pd.Timestamp | None = None,
    embedder: TextEmbedder | None = None,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
    held_out_share: float | None = None,
) -> TrainedModel:
    """Train on ``events`` (canonical columns, in memory: the pandas reference builder) and
    evaluate on the validation cutoff. Cutoffs default to ``choose_cutoffs``; the evaluation
    protocol passes its own, and with cutoffs closer than a horizon a ``held_out_share`` of users
    to validate on (``MemoryData.build``). Training runs fit on Spark-built shards
    (``fit_data``)."""
    if as_of is not None:
        events = events[events["event_time"] < pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)]
    if train_cutoffs is None or val_cutoff is None:
        train_cutoffs, val_cutoff = choose_cutoffs(events, cfg, as_of=as_of)
    if cfg.model.use_text and embedder is None:
        embedder = TextEmbedder(cfg.text_model_path)
    data = MemoryData.build(
        events, cfg, train_cutoffs=train_cutoffs, val_cutoff=val_cutoff, embedder=embedder,
        held_out_share=held_out_share,
    )  # fmt: skip
    return fit_data(data, cfg, on_epoch=on_epoch)
