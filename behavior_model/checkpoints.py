"""Any model family's checkpoint, opened by what it says it holds: what the registry's pyfunc and
the scoring executors load. Above both families' predictors, so neither imports the other."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from behavior_model.hybrid import HybridPredictor
from behavior_model.lm import LMPredictor
from behavior_model.predictor import BehaviorPredictor


def load_predictor(source: Path | io.BytesIO | bytes, *, device: str = "cpu"):
    """Any family's predictor from its checkpoint (a file, a buffer or ``to_bytes``): the event
    transformer's ``BehaviorPredictor``, the pretrained LM's ``behavior_model.lm.LMPredictor`` or
    the hybrid's ``behavior_model.hybrid.HybridPredictor``, by the checkpoint's ``family`` (checkpoints from before families are event transformers)."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    ckpt = torch.load(source, map_location=device, weights_only=True)
    family = ckpt.get("family", "event_transformer")
    if family == BehaviorPredictor.family:
        return BehaviorPredictor.from_checkpoint(ckpt, device=device)
    if family == LMPredictor.family:
        return LMPredictor.from_checkpoint(ckpt, device=device)
    if family == HybridPredictor.family:
        return HybridPredictor.from_checkpoint(ckpt, device=device)
    raise ValueError(f"unknown model family {family!r} in the checkpoint")
