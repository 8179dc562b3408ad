"""The training loop: leakage-free cutoffs, and it learns the planted signal."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from behavior_model.config import TrainConfig
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
