"""The training loop: leakage-free cutoffs, and it learns the planted signal."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from behavior_model.config import ModelConfig, TrainConfig
from behavior_model.families import fit
from behavior_model.predictor import BehaviorPredictor
from behavior_model.trainer import choose_cutoffs


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
def test_basket_tokens_with_contrastive_pretraining_learn_save_and_explain(sample_events, tmp_path):
    """Issue 9, item 3: one token per session (30-minute gap) and contrastive pre-training
    beside next-event prediction, through fit, save/load and the reasons (~20 s). Both losses
    fall and the planted signal is learned (the event-per-token default learns it in
    test_train's test_a_worse_model_does_not_become_champion, on the Spark-built shards)."""
    cfg = TrainConfig(
        model=ModelConfig(token_unit="basket", basket_gap_minutes=30), contrastive_weight=0.5
    )
    trained = fit(sample_events, cfg)
    m = trained.val_metrics
    assert m["val_purchase_n_users"] > 500
    assert m["val_purchase_roc_auc"] >= 0.70 and m["val_churn_roc_auc"] >= 0.70, m
    assert 0 < m["val_purchase_positive_rate"] < 1 and 0 < m["val_churn_positive_rate"] < 1
    pretrain = [h["pretrain_loss"] for h in trained.history if "pretrain_loss" in h]
    assert len(pretrain) == cfg.pretrain_epochs and pretrain[-1] < pretrain[0]
    losses = [h["train_loss"] for h in trained.history if "train_loss" in h]
    assert len(losses) == cfg.epochs and losses[-1] < losses[0]

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


def test_an_unknown_backbone_is_named_and_the_loop_fits_only_its_own_family():
    from dataclasses import replace

    from behavior_model.families import fit_data
    from behavior_model.trainer import fit_event_transformer

    with pytest.raises(ValueError, match=r"unknown backbone 'gpt'.*'hybrid'"):
        ModelConfig(backbone="gpt")
    hybrid = replace(TrainConfig(), model=replace(ModelConfig(), backbone="hybrid"))
    with pytest.raises(ValueError, match="families.fit_data"):
        fit_event_transformer(None, hybrid)
    assert fit_data.__module__ == "behavior_model.families"


def test_held_out_users_are_validated_on_and_never_trained_on(sample_events):
    """Cutoffs a week apart with a 14-day churn horizon: a user's label windows overlap across
    cutoffs, so validation runs on users the model never trains on."""
    from behavior_model.data import held_out
    from behavior_model.training_data import MemoryData

    users = np.array([f"u{i}" for i in range(4000)])
    chosen = held_out(users, 0.2)
    assert np.array_equal(chosen, held_out(users, 0.2))  # the same users in every run
    assert 700 < chosen.sum() < 900  # about a fifth
    assert held_out(users, 0.1).sum() < chosen.sum()
    assert not (held_out(users, 0.1) & ~chosen).any()  # a smaller share is a subset
    with pytest.raises(ValueError, match=r"share of users must lie in \(0, 1\), got 1.0"):
        held_out(users, 1.0)

    cfg = TrainConfig(model=ModelConfig(use_text=False, max_events=8))
    t0 = sample_events["event_time"].min().floor("D")
    week = pd.Timedelta(days=7)
    cutoffs = [t0 + k * week for k in (3, 4, 5)]
    val = t0 + 6 * week
    kw = dict(train_cutoffs=cutoffs, val_cutoff=val)
    every = MemoryData.build(sample_events, cfg, **kw)
    split = MemoryData.build(sample_events, cfg, **kw, held_out_share=0.25)
    train, validation = split.table("train"), split.table("val")
    assert set(train.user_id).isdisjoint(validation.user_id)
    assert held_out(validation.user_id.to_numpy(), 0.25).all() and len(validation) > 100
    assert not held_out(train.user_id.to_numpy(), 0.25).any()
    # Nothing else changes: the same rows as with every user, on either side of the split.
    whole = every.table("train")
    assert len(train) == (~held_out(whole.user_id.to_numpy(), 0.25)).sum()
    pd.testing.assert_frame_equal(
        validation.reset_index(drop=True),
        every.table("val")
        .loc[lambda t: held_out(t.user_id.to_numpy(), 0.25)]
        .reset_index(drop=True),
    )
    assert split.vocab.to_dict() == every.vocab.to_dict()
    assert len(split.table("latest")) == len(every.table("latest"))


def test_lightgbm_stops_on_held_out_users_trained_on_the_others():
    from behavior_model.baselines import stopping_rows
    from behavior_model.data import held_out

    t = [pd.Timestamp(d, tz="UTC") for d in ("2026-01-05", "2026-01-12", "2026-01-19")]
    users = [f"u{i}" for i in range(200)]
    rows = pd.DataFrame([(u, c) for c in t for u in users], columns=["user_id", "cutoff"])
    held, fitted = stopping_rows(rows)
    assert held.sum() == 200 and (rows.cutoff[held] == t[-1]).all() and (fitted == ~held).all()
    held, fitted = stopping_rows(rows, 0.3)
    mine = held_out(rows.user_id.to_numpy(), 0.3)
    assert (rows.cutoff[held] == t[-1]).all() and mine[held].all() and 40 < held.sum() < 80
    assert (rows.cutoff[fitted] < t[-1]).all() and not mine[fitted].any()
    assert set(rows.user_id[held]).isdisjoint(rows.user_id[fitted])
    assert fitted.sum() == 2 * (200 - held.sum())
