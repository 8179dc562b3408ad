"""Training learns the planted signal; the champion alias only moves to a model that earns it."""

from __future__ import annotations

from datetime import date

import mlflow
import pandas as pd
import pytest

from behavior_model.config import TrainConfig
from behavior_model.registry import decide_promotion, load_champion, train_and_register
from behavior_model.train import choose_cutoffs, fit
from jobs.sample_data import SampleConfig, canonical_events


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


def test_promotion_must_also_beat_lightgbm():
    champ = {"churn_roc_auc": 0.70, "purchase_roc_auc": 0.70}
    new = {"churn_roc_auc": 0.76, "purchase_roc_auc": 0.74}
    lgbm = {"churn_roc_auc": 0.75, "purchase_roc_auc": 0.75}
    assert decide_promotion(new, champ, margin=0.0, lightgbm=lgbm, lightgbm_margin=0.0)["promote"]
    d = decide_promotion(new, champ, margin=0.0, lightgbm=lgbm, lightgbm_margin=0.02)
    assert not d["promote"] and not d["beats_lightgbm"] and "LightGBM 0.7500" in d["reason"]
    assert decide_promotion(new, champ, margin=0.0, lightgbm=lgbm, lightgbm_margin=None)["promote"]
    # The first version becomes champion even below LightGBM, and the decision says so.
    first = decide_promotion(new, None, margin=0.0, lightgbm=lgbm, lightgbm_margin=0.02)
    assert first["promote"] and first["beats_lightgbm"] is False


def test_promotion_rule():
    champ = {"churn_roc_auc": 0.70, "purchase_roc_auc": 0.70}
    assert decide_promotion({"churn_roc_auc": 0.70, "purchase_roc_auc": 0.70}, champ, margin=0.0)[
        "promote"
    ]
    assert not decide_promotion(
        {"churn_roc_auc": 0.71, "purchase_roc_auc": 0.68}, champ, margin=0.0
    )["promote"]
    assert not decide_promotion(
        {"churn_roc_auc": 0.71, "purchase_roc_auc": 0.70}, champ, margin=0.02
    )["promote"]
    assert decide_promotion({"churn_roc_auc": 0.5, "purchase_roc_auc": 0.5}, None, margin=0.0)[
        "promote"
    ]


@pytest.mark.slow
def test_a_worse_model_does_not_become_champion(isolated_data_dir):
    events = canonical_events(SampleConfig(days=45, users=500, seed=3))
    as_of = date(2026, 2, 14)
    good = train_and_register(events, TrainConfig(), source="sample", logical_date=as_of)
    assert good["promoted"] and good["model_version"] == "1"
    # Deliberately worse: no pre-training, one epoch at a learning rate that cannot move the weights.
    worse_cfg = TrainConfig(
        pretrain_epochs=0, epochs=1, learning_rate=1e-7, seed=99, calibrate=False
    )
    worse = train_and_register(events, worse_cfg, source="sample", logical_date=as_of)
    assert worse["model_version"] == "2" and not worse["promoted"]
    d = worse["decision"]
    assert d["champion_version"] == "1" and d["new_mean_roc_auc"] < d["champion_mean_roc_auc"]

    _, version = load_champion()
    assert version == "1"
    run = mlflow.get_run(worse["run_id"])
    assert run.data.tags["promoted"] == "false"
    assert (
        "val_purchase_roc_auc" in run.data.metrics
        and "champion_val_purchase_roc_auc" in run.data.metrics
    )
    history = mlflow.MlflowClient().get_metric_history(good["run_id"], "train_loss")
    assert len(history) == TrainConfig().epochs
    # The evaluation table (every model, every metric, both labels) and the charts are artifacts.
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(good["run_id"], "evaluation")}
    assert {
        "evaluation/validation_table.md",
        "evaluation/roc.png",
        "evaluation/calibration.png",
        "evaluation/lift.png",
    } <= artifacts
    table = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/evaluation/validation_table.json")
    models = {(r["label"], r["model"]) for r in table}
    assert {
        (lb, m)
        for lb in ("churn", "purchase")
        for m in ("recency", "logistic_regression", "lightgbm", "behavior_model")
    } <= models
    assert "val_purchase_lightgbm_roc_auc" in run.data.metrics
