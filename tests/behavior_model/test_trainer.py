"""The training loop: leakage-free cutoffs, and it learns the planted signal."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from behavior_model.config import ModelConfig, TrainConfig
from behavior_model.predictor import BehaviorPredictor
from behavior_model.trainer import choose_cutoffs, fit


def test_cutoffs_leave_no_label_overlap(sample_events):
    cfg = TrainConfig()
    train, val = choose_cutoffs(sample_events, cfg)
    horizon = pd.Timedelta(days=14)
    assert val + horizon <= sample_events["event_time"].max().floor("D") + pd.Timedelta(days=1)
    assert all(t + horizon <= val for t in train) and len(train) == cfg.n_train_cutoffs
    # The logical date, not the data's end, bounds what training may see.
    _, val_asof = choose_cutoffs(sample_events, cfg, as_of=date(2026, 2, 20))
    assert val_asof == pd.Timestamp("2026-02-07", tz="UTC")


@pytest.mark.slow
def test_learns_the_planted_signal(sample_events):
    trained = fit(sample_events, TrainConfig())
    m = trained.val_metrics
    assert m["val_purchase_n_users"] > 500
    assert m["val_purchase_roc_auc"] >= 0.70, m
    assert m["val_churn_roc_auc"] >= 0.70, m
    assert 0 < m["val_purchase_positive_rate"] < 1 and 0 < m["val_churn_positive_rate"] < 1
    losses = [h["train_loss"] for h in trained.history if "train_loss" in h]
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_basket_tokens_with_contrastive_pretraining_learn_save_and_explain(sample_events, tmp_path):
    """Issue 9, item 3: one token per session (30-minute gap) and contrastive pre-training
    beside next-event prediction, through fit, save/load and the reasons (~20 s)."""
    cfg = TrainConfig(
        model=ModelConfig(token_unit="basket", basket_gap_minutes=30), contrastive_weight=0.5
    )
    trained = fit(sample_events, cfg)
    m = trained.val_metrics
    assert m["val_purchase_roc_auc"] >= 0.70 and m["val_churn_roc_auc"] >= 0.70, m
    pretrain = [h["pretrain_loss"] for h in trained.history if "pretrain_loss" in h]
    assert len(pretrain) == cfg.pretrain_epochs and pretrain[-1] < pretrain[0]

    predictor = trained.predictor
    loaded = BehaviorPredictor.load(predictor.save(tmp_path / "basket.pt"))
    assert loaded.model.cfg.token_unit == "basket"
    cutoff = pd.Timestamp("2026-02-20", tz="UTC")
    ex = loaded.examples(sample_events, cutoff, with_labels=False)
    assert ex.members is not None and ex.n_events < ex.member_offsets[-1]  # sessions hold events
    np.testing.assert_allclose(
        loaded.predict_examples(ex), predictor.predict_examples(ex), rtol=1e-5, atol=1e-6
    )
    reasons = loaded.explain(ex)
    assert set(reasons["user_id"]) == set(ex.user_id) and reasons["weight"].abs().gt(0).all()
    assert reasons["description"].str.contains("visits").any()  # of the last 64 visits


def test_an_unknown_token_unit_is_named():
    with pytest.raises(ValueError, match="token_unit 'visit'"):
        ModelConfig(token_unit="visit")
