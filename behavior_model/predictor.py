"""A trained model with everything needed to score: configs, vocabulary, text encoder path."""

from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from behavior_model.calibration import apply_columns
from behavior_model.config import LABELS, LabelConfig, ModelConfig
from behavior_model.data import (
    Examples,
    Vocabulary,
    build_examples,
    collate,
    make_text_table,
    utc_timestamp,
)
from behavior_model.model import BehaviorModel
from behavior_model.serving import Predictor
from behavior_model.text import TextEmbedder


class BehaviorPredictor(Predictor):
    """The event transformer's predictor (``checkpoints.load_predictor`` opens any family's)."""

    family = "event_transformer"

    def __init__(
        self,
        model: BehaviorModel,
        *,
        vocab: Vocabulary,
        labels: LabelConfig,
        text_model_path: str | None,
        calibration: list[tuple[float, float]] | None = None,
        reference: dict | None = None,
    ) -> None:
        self.model = model.eval()
        # Platt (a, b) per label in LABELS order; None = raw model probabilities.
        self.calibration = calibration
        # The training population's input and score distributions (behavior_model.monitoring):
        # nightly scoring measures drift against it. None = a model saved before monitoring.
        self.reference = reference
        self.vocab = vocab
        self.labels = labels
        self.text_model_path = text_model_path
        self._embedder: TextEmbedder | None = None

    @property
    def embedder(self) -> TextEmbedder | None:
        if not self.model.cfg.use_text:
            return None
        if self._embedder is None:
            self._embedder = TextEmbedder(self.text_model_path)
        return self._embedder

    @embedder.setter
    def embedder(self, embedder: TextEmbedder) -> None:
        """Use this embedder (one with an on-disk cache, say) for the item texts."""
        self._embedder = embedder

    def examples(self, events: pd.DataFrame, cutoff, *, with_labels: bool) -> Examples:
        cutoff = utc_timestamp(cutoff)
        text_index, table = make_text_table(events[events["event_time"] < cutoff], self.embedder)
        return build_examples(
            events,
            cutoff,
            labels=self.labels,
            model=self.model.cfg,
            vocab=self.vocab,
            text_index=text_index,
            text_table=table,
            with_labels=with_labels,
        )

    @torch.no_grad()
    def predict_examples(
        self, ex: Examples, *, batch_size: int = 512, calibrated: bool = True
    ) -> np.ndarray:
        """(n, 2) probabilities in LABELS order (calibrated when a calibration is set)."""
        return self.predict_with_vectors(ex, batch_size=batch_size, calibrated=calibrated)[0]

    @torch.no_grad()
    def predict_with_vectors(
        self, ex: Examples, *, batch_size: int = 512, calibrated: bool = True,
        rows: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Probabilities (n, 2) and the user vectors the heads read (n, hidden_size), of every
        example or of the examples ``rows`` (in that order)."""
        self.model.eval()
        device = next(self.model.parameters()).device
        order = np.arange(len(ex)) if rows is None else np.asarray(rows)
        probs, vectors = [], []
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size].tolist()
            batch = {k: v.to(device) for k, v in collate(ex, idx).items() if k != "targets"}
            vec = self.model.user_vector(batch)
            probs.append(torch.sigmoid(self.model.heads(vec).float()).cpu().numpy())
            vectors.append(vec.float().cpu().numpy())
        hidden = self.model.cfg.hidden_size
        p = np.concatenate(probs) if probs else np.zeros((0, len(LABELS)), np.float32)
        v = np.concatenate(vectors) if vectors else np.zeros((0, hidden), np.float32)
        return (apply_columns(p, self.calibration) if calibrated else p), v

    def explain(self, ex: Examples, *, top_k: int = 3) -> pd.DataFrame:
        """The reasons behind each score (``behavior_model.explain``)."""
        from behavior_model.explain import explain

        return explain(self.model, ex, top_k=top_k)

    def checkpoint(self) -> dict:
        return {
            "model_config": asdict(self.model.cfg),
            "label_config": asdict(self.labels),
            "vocab": self.vocab.to_dict(),
            "text_model_path": self.text_model_path,
            "calibration": self.calibration,
            "reference": self.reference,
            "state_dict": {k: v.cpu() for k, v in self.model.state_dict().items()},
        }

    @classmethod
    def load(cls, path: Path | io.BytesIO, *, device: str = "cpu") -> BehaviorPredictor:
        ckpt = torch.load(path, map_location=device, weights_only=True)
        family = ckpt.get("family", cls.family)
        if family != cls.family:
            raise TypeError(f"{path}: a {family} checkpoint (behavior_model.checkpoints opens it)")
        return cls.from_checkpoint(ckpt, device=device)

    @classmethod
    def from_checkpoint(cls, ckpt: dict, *, device: str = "cpu") -> BehaviorPredictor:
        cfg = ModelConfig(**ckpt["model_config"])
        vocab = Vocabulary.from_dict(ckpt["vocab"])
        model = BehaviorModel(
            cfg, n_item_tokens=vocab.n_item_tokens, n_categories=vocab.n_categories
        )
        missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
        # Versions saved before contrastive pre-training lack its projection (never used to score).
        missing = [k for k in missing if not k.startswith("contrastive_head.")]
        if missing or unexpected:
            raise RuntimeError(
                f"the checkpoint does not fit this code's model (missing {missing}, unexpected "
                f"{unexpected}): it was saved by another version; retrain it"
            )
        return cls(
            model.to(device),
            vocab=vocab,
            labels=LabelConfig(**ckpt["label_config"]),
            text_model_path=ckpt["text_model_path"],
            calibration=[tuple(c) for c in ckpt["calibration"]]
            if ckpt.get("calibration")
            else None,
            reference=ckpt.get("reference"),
        )
