"""What every model family's predictor shares for serving: users' scores from events, and the
checkpoint as a file or bytes (what the registry stores and Spark ships to executors). A family
adds ``examples``, ``predict_examples``, ``predict_with_vectors``, ``explain`` and
``checkpoint()`` (a dict of tensors and plain values; ``checkpoints.load_predictor`` reads it)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import torch


class Predictor:
    family: str

    def checkpoint(self) -> dict:
        raise NotImplementedError

    def predict_users(self, events: pd.DataFrame, cutoff) -> pd.DataFrame:
        """Scores for every user eligible at ``cutoff``, from events strictly before it."""
        ex = self.examples(events, cutoff, with_labels=False)
        probs = self.predict_examples(ex)
        return pd.DataFrame(
            {
                "user_id": ex.user_id,
                "churn_probability": probs[:, 0].astype(float),
                "purchase_probability": probs[:, 1].astype(float),
            }
        )

    def save(self, path: Path | io.BytesIO) -> Path | io.BytesIO:
        """The checkpoint, to a file or a buffer, with the family it holds."""
        torch.save({"family": self.family} | self.checkpoint(), path)
        return path

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.save(buffer)
        return buffer.getvalue()
