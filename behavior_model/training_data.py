"""What a training run reads, from either of two builders, behind one interface.

A training run needs labelled examples at its training cutoffs and at its validation cutoff, the
unlabelled examples at the last day of data (the drift reference), the vocabulary and the item
text vectors. ``behavior_model.families.fit_data`` reads them through ``TrainingData``:

- ``ShardData``: the lake's example shards, built on Spark (``jobs.examples``; what
  ``behavior_model.train`` uses). Training batches stream through
  ``behavior_model.streaming.ShardStream`` and predictions are made one record batch at a time, so
  host memory holds the shuffle buffer and a few floats per example (labels, RFM features,
  probabilities), never the users' events.
- ``MemoryData``: built in pandas from events (``behavior_model.data.build_examples``): the
  reference the Spark shards are tested equal to, used by the evaluation protocol and unit tests.

Every part (``train``, ``val``, ``latest``) has a ``table``: ``user_id``, ``cutoff``, ``churn``,
``purchase`` (NaN where unlabelled) and the raw ``FEATURE_NAMES``, one row per example, in the order
``predict`` returns probabilities.

``excluding_fold(k, folds)`` is the same data without the users of one user fold
(``data.user_fold``): every part, batch and prediction leaves them out. The hybrid family
(``behavior_model.hybrid``) fits its cross-fitted transformers on such views.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import torch
from torch.utils.data import DataLoader

from behavior_model.config import ModelConfig, TrainConfig
from behavior_model.data import (
    Examples,
    Vocabulary,
    build_examples,
    build_vocabulary,
    collate,
    concat_examples,
    examples_from_arrow,
    held_out,
    make_text_table,
    user_fold,
)
from behavior_model.features import transform
from behavior_model.streaming import ShardStream, StreamConfig
from pipeline.contracts import FEATURE_NAMES

PARTS = ("train", "val", "latest")
LABELLED = ("train", "val")
# Rows read from a shard at a time when predicting.
PREDICT_READ_ROWS = 8192

# The item text vectors a predictor reads: (text -> row, vectors with row 0 = no text).
TextPayload = tuple[dict[str, int], np.ndarray]


class EpochBatches:
    """Training batches, one pass per ``epoch(e)``; ``len`` is the number of batches per pass."""

    def __init__(self, n: int, epoch: Callable[[int], Iterator[dict[str, torch.Tensor]]]):
        self.n, self.epoch = n, epoch

    def __len__(self) -> int:
        return self.n


def outside_fold(user_ids: np.ndarray, *, fold: int, folds: int) -> np.ndarray:
    """Which of ``user_ids`` are not in user fold ``fold`` of ``folds``."""
    return user_fold(user_ids, folds) != fold


def context_stats(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (+1e-6) of the log-scaled features the heads read."""
    x = transform(features[list(FEATURE_NAMES)]).astype(np.float32)
    return x.mean(0), x.std(0) + 1e-6


def _table(ex: Examples) -> pd.DataFrame:
    n = len(ex)
    out = pd.DataFrame({"user_id": ex.user_id, "cutoff": ex.cutoff})
    out["churn"] = ex.churn if ex.churn is not None else np.full(n, np.nan, np.float32)
    out["purchase"] = ex.purchase if ex.purchase is not None else np.full(n, np.nan, np.float32)
    features = pd.DataFrame(ex.features.reshape(n, len(FEATURE_NAMES)), columns=FEATURE_NAMES)
    return pd.concat([out, features], axis=1)


@dataclass
class TrainingData(ABC):
    train_cutoffs: list[pd.Timestamp]
    val_cutoff: pd.Timestamp
    vocab: Vocabulary
    # The new model's item text vectors.
    text: TextPayload
    # (fold, folds): the users of that user fold are left out of everything (excluding_fold).
    without_fold: tuple[int, int] | None = None

    @abstractmethod
    def table(self, part: str) -> pd.DataFrame:
        """The part's examples without their events; see the module docstring."""

    @abstractmethod
    def train_batches(self, cfg: TrainConfig) -> EpochBatches:
        """Shuffled, collated training batches (another order each pass)."""

    @abstractmethod
    def predict(self, predictor, part: str, *, calibrated: bool = True) -> np.ndarray:
        """(n, 2) probabilities of ``predictor`` (the new model or another version, with its own
        vocabulary) for the part's examples, in ``table(part)`` order."""

    @abstractmethod
    def example_chunks(self, part: str, model: ModelConfig) -> Iterator[Examples]:
        """The part's examples (labels on ``train`` and ``val``), in ``table(part)`` order, a
        chunk at a time, with this data's vocabulary and item texts: for a model family that
        reads the events themselves (behavior_model.lm) rather than collated batches."""

    def excluding_fold(self, fold: int, folds: int) -> TrainingData:
        """This data without the users of user fold ``fold`` of ``folds``."""
        if not 0 <= fold < folds:
            raise ValueError(f"user fold {fold} of {folds}: must lie in [0, {folds})")
        return replace(self, without_fold=(fold, folds))

    def kept(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The user filter of ``excluding_fold`` (user ids -> which to keep), or None."""
        if self.without_fold is None:
            return None
        fold, folds = self.without_fold
        return partial(outside_fold, fold=fold, folds=folds)

    def _filtered(self, table: pd.DataFrame) -> pd.DataFrame:
        keep = self.kept()
        return table if keep is None else table[keep(table["user_id"].to_numpy())]

    def context_stats(self) -> tuple[np.ndarray, np.ndarray]:
        return context_stats(self.table("train"))

    def labels(self, part: str) -> dict[str, np.ndarray]:
        t = self.table(part)
        return {"churn": t["churn"].to_numpy(), "purchase": t["purchase"].to_numpy()}


@dataclass
class MemoryData(TrainingData):
    """Examples built in pandas from ``events`` (the reference builder)."""

    events: pd.DataFrame = None
    examples: dict[str, Examples] = None

    @classmethod
    def build(
        cls,
        events: pd.DataFrame,
        cfg: TrainConfig,
        *,
        train_cutoffs: list[pd.Timestamp],
        val_cutoff: pd.Timestamp,
        embedder=None,
        held_out_share: float | None = None,
    ) -> MemoryData:
        """``held_out_share``: validate on that share of the users (``data.held_out``) and train
        on the others, for training cutoffs whose label windows overlap the validation cutoff's
        (a user's overlapping labels would otherwise sit on both sides). None: every user on
        both sides, for cutoffs at least a horizon apart (``trainer.cutoffs_for``'s)."""
        inputs = events[events["event_time"] < val_cutoff]  # vocabulary sees no label period
        vocab = build_vocabulary(inputs, cfg.model)
        text = make_text_table(inputs, embedder if cfg.model.use_text else None)
        common = dict(
            labels=cfg.labels, model=cfg.model, vocab=vocab, text_index=text[0], text_table=text[1]
        )
        data_end = events["event_time"].max().floor("D") + pd.Timedelta(days=1)
        fitted = validated = events
        if held_out_share is not None:
            users = events["user_id"].unique()
            held = events["user_id"].isin(users[held_out(users, held_out_share)])
            validated, fitted = events[held], events[~held]
        examples = {
            "train": concat_examples([build_examples(fitted, t, **common) for t in train_cutoffs]),
            "val": build_examples(validated, val_cutoff, **common),
            "latest": build_examples(events, data_end, **common, with_labels=False),
        }
        return cls(train_cutoffs, val_cutoff, vocab, text, events=events, examples=examples)

    def _rows(self, part: str) -> np.ndarray:
        """The part's examples this data holds (all but an excluded fold's users)."""
        keep = self.kept()
        ids = self.examples[part].user_id
        return np.arange(len(ids)) if keep is None else np.flatnonzero(keep(ids))

    def table(self, part: str) -> pd.DataFrame:
        return self._filtered(_table(self.examples[part])).reset_index(drop=True)

    def train_batches(self, cfg: TrainConfig) -> EpochBatches:
        ex = self.examples["train"]
        loader = DataLoader(
            self._rows("train").tolist(),
            batch_size=cfg.batch_size,
            shuffle=True,
            collate_fn=lambda idx: collate(ex, idx),
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        return EpochBatches(len(loader), lambda _epoch: iter(loader))

    def example_chunks(self, part: str, model: ModelConfig) -> Iterator[Examples]:
        if self.without_fold is not None:
            raise ValueError("in-memory examples without a user fold are read through predict")
        yield self.examples[part]

    def predict(self, predictor, part: str, *, calibrated: bool = True) -> np.ndarray:
        return self._predict_all(predictor, part, calibrated=calibrated)[self._rows(part)]

    def _predict_all(self, predictor, part: str, *, calibrated: bool) -> np.ndarray:
        ex = self.examples[part]
        if predictor.vocab is self.vocab:
            return predictor.predict_examples(ex, calibrated=calibrated)
        if part == "train":
            raise ValueError("another model version is compared on the validation cutoff only")
        # Another version: its own vocabulary, text vectors and lookback, on the same users
        # (users it does not score get its mean prediction).
        theirs = predictor.examples(self.events, pd.Timestamp(ex.cutoff[0]), with_labels=False)
        probs = pd.DataFrame(
            predictor.predict_examples(theirs, calibrated=calibrated), index=theirs.user_id
        ).reindex(ex.user_id)
        return probs.fillna(probs.mean()).to_numpy()


@dataclass
class ShardData(TrainingData):
    """Examples read from the lake's example shards (Parquet files per part)."""

    files: dict[str, list[str]] = None
    # The item text vectors of another predictor (another text encoder): from item_embeddings.
    text_of: Callable[[object], TextPayload] = None
    stream: StreamConfig = StreamConfig()

    def _dataset(self, part: str) -> ds.Dataset:
        return ds.dataset(self.files[part], format="parquet")

    def table(self, part: str) -> pd.DataFrame:
        columns = ["user_id", "cutoff", "churn", "purchase", *FEATURE_NAMES]
        t = self._dataset(part).to_table(columns=columns)
        out = t.to_pandas()
        out["cutoff"] = out["cutoff"].dt.tz_localize(None).astype("datetime64[us]")
        if part in LABELLED and (out["churn"].isna().any() or out["purchase"].isna().any()):
            raise ValueError(f"the {part} shards have rows without labels: {self.files[part]}")
        return self._filtered(out).reset_index(drop=True)

    def rows(self, part: str) -> int:
        if self.without_fold is not None:
            return len(self.table(part))
        return self._dataset(part).count_rows()

    def train_batches(self, cfg: TrainConfig) -> EpochBatches:
        stream = ShardStream(
            self.files["train"], model=cfg.model, vocab=self.vocab, text_index=self.text[0],
            text_table=self.text[1],
            cfg=StreamConfig(
                batch_size=cfg.batch_size, buffer_rows=self.stream.buffer_rows,
                read_rows=self.stream.read_rows, seed=cfg.seed,
            ),
            keep=self.kept(),
        )  # fmt: skip

        def epoch(e: int) -> Iterator[dict[str, torch.Tensor]]:
            stream.set_epoch(e)
            return iter(stream)

        # One reader: full batches until the last (ShardStream emits whole batches).
        return EpochBatches(-(-self.rows("train") // cfg.batch_size), epoch)

    def _chunks(
        self, part: str, model: ModelConfig, vocab: Vocabulary, text: TextPayload, labels: bool
    ) -> Iterator[Examples]:
        keep = self.kept()
        for batch in self._dataset(part).to_batches(
            batch_size=PREDICT_READ_ROWS, batch_readahead=0, fragment_readahead=0
        ):
            table = pa.Table.from_batches([batch])
            if keep is not None:
                table = table.filter(keep(table["user_id"].to_numpy(zero_copy_only=False)))
            if table.num_rows:
                yield examples_from_arrow(
                    table, model=model, vocab=vocab,
                    text_index=text[0], text_table=text[1], with_labels=labels,
                )  # fmt: skip

    def example_chunks(self, part: str, model: ModelConfig) -> Iterator[Examples]:
        return self._chunks(part, model, self.vocab, self.text, part in LABELLED)

    def predict(self, predictor, part: str, *, calibrated: bool = True) -> np.ndarray:
        text = self.text if predictor.vocab is self.vocab else self.text_of(predictor)
        out = [
            predictor.predict_examples(ex, calibrated=calibrated)
            for ex in self._chunks(part, predictor.model.cfg, predictor.vocab, text, False)
        ]
        return np.concatenate(out) if out else np.zeros((0, 2), np.float32)
