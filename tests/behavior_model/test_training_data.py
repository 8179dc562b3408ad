"""Training reads Spark-built shards: equal to the pandas reference, streamed in exact batches."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest
import torch

from behavior_model.config import ModelConfig, TrainConfig, label_config
from behavior_model.model import BehaviorModel
from behavior_model.predictor import BehaviorPredictor
from behavior_model.streaming import StreamConfig
from behavior_model.text import TextEmbedder
from behavior_model.train import training_data
from behavior_model.trainer import choose_cutoffs
from behavior_model.training_data import PARTS, MemoryData, context_stats
from pipeline.context import RunContext
from pipeline.contracts import FEATURE_NAMES
from pipeline.sample_data import SampleConfig, canonical_events
from pipeline.source_mapping import load_mapping
from tests.behavior_model.conftest import write_sessionized

SAMPLE = load_mapping("sample_clickstream")
RUN_DATE = date(2026, 2, 14)


@pytest.fixture(scope="module")
def both(spark, tmp_path_factory):
    """The same sample shop as shards built on Spark and as examples built in pandas."""
    from tests.conftest import use_data_dir

    mp = pytest.MonkeyPatch()
    settings = use_data_dir(mp, tmp_path_factory.mktemp("training_data"))
    events = canonical_events(SampleConfig(days=45, users=300, seed=3))
    # A bot: in the lake, never in training.
    bot = events[events["user_id"] == events["user_id"].iloc[0]].assign(user_id="bot-1")
    ctx = RunContext(settings, SAMPLE, RUN_DATE)
    write_sessionized(ctx.lake, pd.concat([events, bot.assign(is_bot=True)], ignore_index=True))
    model = ModelConfig(hidden_size=32, intermediate_size=64, max_events=16)
    cfg = replace(TrainConfig(model=model, batch_size=32), labels=label_config(SAMPLE.labels))
    shards, daily = training_data(ctx, cfg)
    seen = events[events["event_time"] < pd.Timestamp(RUN_DATE, tz="UTC") + pd.Timedelta(days=1)]
    memory = MemoryData.build(
        seen, cfg, train_cutoffs=shards.train_cutoffs, val_cutoff=shards.val_cutoff,
        embedder=TextEmbedder(None, cache_dir=settings.cache_dir),
    )  # fmt: skip
    yield cfg, seen, shards, daily, memory
    mp.undo()


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    return table.sort_values(["cutoff", "user_id"]).reset_index(drop=True)


def test_shards_hold_the_same_examples_as_the_pandas_reference(both):
    cfg, seen, shards, daily, memory = both
    assert (shards.train_cutoffs, shards.val_cutoff) == choose_cutoffs(seen, cfg, as_of=RUN_DATE)
    assert len(shards.train_cutoffs) >= 2
    # The vocabulary counted on Spark before the validation cutoff equals the pandas one.
    assert shards.vocab.to_dict() == memory.vocab.to_dict() and len(shards.vocab.items) > 50
    for part in PARTS:
        got, want = _sorted(shards.table(part)), _sorted(memory.table(part))
        assert len(got) == len(want) > 100, part
        assert got["user_id"].tolist() == want["user_id"].tolist(), part
        assert (got["cutoff"] == want["cutoff"]).all(), part
        np.testing.assert_allclose(got[list(FEATURE_NAMES)], want[list(FEATURE_NAMES)], rtol=1e-9)
        np.testing.assert_array_equal(got[["churn", "purchase"]], want[["churn", "purchase"]])
    assert not shards.table("latest")["churn"].notna().any()
    assert 0 < shards.table("val")["churn"].mean() < 1
    for a, b in zip(shards.context_stats(), memory.context_stats(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    # The run's input: every event up to the run date, the bot's left out.
    assert daily["events"].sum() == len(seen) and "bot-1" not in set(shards.table("train").user_id)


def test_a_model_scores_shards_and_memory_alike(both):
    """Same weights, each data's own vocabulary object and text vectors: the same probabilities
    per (user, cutoff), including the item text vectors read from item_embeddings."""
    cfg, _, shards, _, memory = both
    torch.manual_seed(0)
    model_cfg = replace(cfg.model, context_dim=len(FEATURE_NAMES))
    net = BehaviorModel(
        model_cfg, n_item_tokens=shards.vocab.n_item_tokens, n_categories=shards.vocab.n_categories
    )
    mean, std = context_stats(shards.table("train"))
    net.context_mean.copy_(torch.from_numpy(mean))
    net.context_std.copy_(torch.from_numpy(std))
    for part in ("val", "latest"):
        probs = {}
        for name, data in (("shards", shards), ("memory", memory)):
            p = BehaviorPredictor(net, vocab=data.vocab, labels=cfg.labels, text_model_path=None)
            table = data.table(part)
            scored = data.predict(p, part)
            assert scored.shape == (len(table), 2)
            probs[name] = _sorted(table.assign(churn_p=scored[:, 0], purchase_p=scored[:, 1]))
        np.testing.assert_allclose(
            probs["shards"][["churn_p", "purchase_p"]],
            probs["memory"][["churn_p", "purchase_p"]],
            rtol=1e-4,
            atol=1e-6,
        )
        assert probs["shards"]["churn_p"].std() > 1e-4  # not a constant


def test_training_batches_stream_every_example_once(both):
    cfg, _, shards, _, _ = both
    # A buffer smaller than the data: batches leave it while the rest is still being read.
    small = replace(shards, stream=StreamConfig(buffer_rows=96, read_rows=40))
    batches = small.train_batches(
        replace(cfg, model=replace(cfg.model, context_dim=len(FEATURE_NAMES)))
    )
    sizes = [len(b["lengths"]) for b in batches.epoch(0)]
    # len() is exact (the learning-rate schedule's length), every example once per pass.
    assert len(sizes) == len(batches) and sum(sizes) == small.rows("train") > 400
    assert all(s == cfg.batch_size for s in sizes[:-1])


def test_a_view_without_a_user_fold_leaves_its_users_out_everywhere(both):
    """What the hybrid's cross-fitted transformers train on: shards and memory alike drop one
    fold's users from every part, batch and prediction, and the folds partition the users."""
    from behavior_model.data import user_fold

    cfg, _, shards, _, memory = both
    model_cfg = replace(cfg.model, context_dim=len(FEATURE_NAMES))
    torch.manual_seed(0)
    net = BehaviorModel(
        model_cfg, n_item_tokens=shards.vocab.n_item_tokens, n_categories=shards.vocab.n_categories
    )
    for data in (shards, memory):
        views = [data.excluding_fold(k, 3) for k in range(3)]
        for part in PARTS:
            full = data.table(part)
            for k, view in enumerate(views):
                kept = view.table(part)
                assert not (user_fold(kept["user_id"].to_numpy(), 3) == k).any(), part
                want = full[user_fold(full["user_id"].to_numpy(), 3) != k].reset_index(drop=True)
                pd.testing.assert_frame_equal(kept, want)
                p = BehaviorPredictor(
                    net, vocab=data.vocab, labels=cfg.labels, text_model_path=None
                )
                keep = user_fold(full["user_id"].to_numpy(), 3) != k
                # Other batch paddings: float32 rounding only.
                np.testing.assert_allclose(
                    view.predict(p, part), data.predict(p, part)[keep], atol=1e-6
                )
        # Each pass of a view's batches holds exactly its rows (a third of the users gone).
        for view in views:
            batches = view.train_batches(replace(cfg, model=model_cfg))
            sizes = [len(b["lengths"]) for b in batches.epoch(0)]
            assert sum(sizes) == len(view.table("train")) and len(sizes) == len(batches)
            assert len(view.table("train")) < 0.8 * len(data.table("train"))
    with pytest.raises(ValueError, match="must lie in"):
        shards.excluding_fold(3, 3)
