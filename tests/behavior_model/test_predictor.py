"""A saved predictor loads back into the same model: same configs, vocabulary, calibration, scores."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from behavior_model.config import LabelConfig, ModelConfig
from behavior_model.data import build_vocabulary
from behavior_model.model import BehaviorModel
from behavior_model.predictor import BehaviorPredictor
from tests.behavior_model.conftest import events_frame


def test_save_and_load_round_trip(tmp_path):
    events = events_frame([
        ("u1", "2026-01-01 10:00", "view", "I1"), ("u1", "2026-01-02 10:00", "cart", "I2"),
        ("u2", "2026-01-03 09:00", "purchase", "I1"), ("u3", "2026-01-03 12:00", "view", "I9"),
    ])  # fmt: skip
    cfg = replace(ModelConfig(), use_text=False, use_context=False)
    vocab = build_vocabulary(events, cfg)
    model = BehaviorModel(cfg, n_item_tokens=vocab.n_item_tokens, n_categories=vocab.n_categories)
    labels = LabelConfig(purchase_horizon_days=30, churn_horizon_days=90, lookback_days=365)
    original = BehaviorPredictor(
        model,
        vocab=vocab,
        labels=labels,
        text_model_path=None,
        calibration=[(0.5, -1.0), (2.0, 0.3)],
    )
    loaded = BehaviorPredictor.load(original.save(tmp_path / "checkpoint.pt"))

    assert loaded.model.cfg == cfg and loaded.labels == labels
    assert loaded.vocab.to_dict() == vocab.to_dict()
    assert loaded.calibration == [(0.5, -1.0), (2.0, 0.3)]
    cutoff = pd.Timestamp("2026-01-04", tz="UTC")
    a, b = original.predict_users(events, cutoff), loaded.predict_users(events, cutoff)
    assert list(a["user_id"]) == ["u1", "u2", "u3"]
    np.testing.assert_allclose(a[["churn_probability", "purchase_probability"]],
                               b[["churn_probability", "purchase_probability"]], rtol=0, atol=1e-7)  # fmt: skip


def test_an_executor_never_serves_another_model_of_the_same_name_and_version():
    """Bug: executors cached the loaded model by "<name>:<version>" alone, so a second model with
    that name and version (another tracking store, a model registered again) was scored with the
    first one's weights for as long as the Python worker lived."""
    from behavior_model import spark_scoring

    events = events_frame([("u1", "2026-01-01 10:00", "view", "I1")])
    cfg = replace(ModelConfig(), use_text=False, use_context=False)
    vocab = build_vocabulary(events, cfg)
    payloads = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = BehaviorModel(
            cfg, n_item_tokens=vocab.n_item_tokens, n_categories=vocab.n_categories
        )
        predictor = BehaviorPredictor(
            model, vocab=vocab, labels=LabelConfig(), text_model_path=None
        )
        payloads.append(
            spark_scoring.ScoringPayload(
                "behavior-model-shop:1", predictor.to_bytes(), {}, np.zeros((1, 4))
            )
        )
    loaded = [spark_scoring._predictor(p).model.state_dict() for p in payloads]
    name = next(iter(loaded[0]))
    assert not torch.equal(loaded[0][name], loaded[1][name])
    assert payloads[0].cache_key != payloads[1].cache_key
    assert payloads[0].cache_key.startswith("behavior-model-shop:1:")
