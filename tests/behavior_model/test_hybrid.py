"""The hybrid family: stable user folds, out-of-fold sequence outputs, LightGBM on top."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from behavior_model.config import LABELS, TrainConfig
from behavior_model.data import user_fold
from behavior_model.hybrid import fit_stack
from pipeline.contracts import FEATURE_NAMES


def test_user_folds_are_stable_and_balanced():
    users = np.array([f"u{i}" for i in range(3000)])
    folds = user_fold(users, 3)
    assert np.array_equal(folds, user_fold(users, 3))  # the same in every run and process
    assert user_fold(np.array(["u0"]), 3)[0] == 2  # CRC-32, not Python's salted hash
    assert np.bincount(folds).min() > 900  # about a third each


def test_the_hybrid_family_trains_out_of_fold_and_serves_from_its_checkpoint(sample_events):
    """fit_data with backbone "hybrid": one transformer per user fold, each trained without its
    fold's users; every user scored by its own fold's transformer; the checkpoint round-trips to
    the same scores; explanations are the stack's contributions in words."""
    from behavior_model.checkpoints import load_predictor
    from behavior_model.families import fit_data
    from behavior_model.hybrid import HybridPredictor
    from behavior_model.training_data import MemoryData

    cfg = TrainConfig(device="cpu", epochs=1, pretrain_epochs=0, hybrid_folds=2)
    cfg = replace(cfg, model=replace(cfg.model, use_text=False, max_events=16, backbone="hybrid"))
    day = pd.Timedelta(days=1)
    t0 = sample_events["event_time"].min().floor("D")
    data = MemoryData.build(
        sample_events, cfg, train_cutoffs=[t0 + 28 * day, t0 + 35 * day], val_cutoff=t0 + 42 * day
    )
    trained = fit_data(data, cfg)
    predictor = trained.predictor
    assert isinstance(predictor, HybridPredictor) and len(predictor.folds) == 2
    for label in LABELS:  # the planted signal, on validation users no transformer trained on
        assert trained.val_metrics[f"val_{label}_roc_auc"] > 0.7, trained.val_metrics
    assert predictor.calibration is not None and predictor.reference is not None

    # A fold's view leaves its users out of every part; the other fold holds exactly them.
    users = set(data.table("train")["user_id"])
    views = [set(data.excluding_fold(k, 2).table("train")["user_id"]) for k in range(2)]
    assert views[0] | views[1] == users and not views[0] & views[1]
    # Out of fold: each user's sequence outputs are its own fold's transformer's, no other's.
    ex = data.examples["val"]
    logits, vectors = predictor.out_of_fold(ex)
    # The PCA is fitted on these validation vectors, before any training row is read, so the
    # training rows keep their components alone.
    np.testing.assert_allclose(predictor.stack.pca_mean, vectors.mean(axis=0), rtol=1e-5)
    own = user_fold(ex.user_id, 2)
    for k, fold in enumerate(predictor.folds):
        raw = fold.predict_examples(ex, calibrated=False)
        rows = own == k
        np.testing.assert_allclose(logits[rows], np.log(raw / (1 - raw))[rows], rtol=1e-4)
        assert not np.allclose(logits[~rows], np.log(raw / (1 - raw))[~rows], rtol=1e-4)
    # Fold 0 is the vector basis: its own map is the identity.
    np.testing.assert_allclose(
        predictor.maps[0][:-1], np.eye(predictor.maps[0].shape[1]), atol=1e-3
    )

    served = load_predictor(predictor.to_bytes())
    assert isinstance(served, HybridPredictor)
    np.testing.assert_allclose(served.predict_examples(ex), predictor.predict_examples(ex))
    # A week after validation, on users' events alone: the planted signal, far above chance.
    test = served.examples(sample_events, t0 + 49 * day, with_labels=True)
    probs = served.predict_examples(test)
    assert len(test) > 300
    for j, label in enumerate(LABELS):
        assert roc_auc_score(getattr(test, label), probs[:, j]) > 0.7, label
    # The logits-only ablation: the same fold transformers, a stack without vector components.
    logits_only = fit_stack(data, predictor.folds, replace(cfg, hybrid_components=0)).predictor
    assert logits_only.stack.pca_components is None
    assert logits_only.stack.boosters["churn"].num_feature() == len(FEATURE_NAMES) + 2
    assert predictor.stack.boosters["churn"].num_feature() == len(FEATURE_NAMES) + 2 + 8

    reasons = served.explain(data.examples["val"], top_k=3)
    assert len(reasons) == 3 * len(LABELS) * len(ex)
    assert set(reasons["driver"]) <= {f"feature:{n}" for n in FEATURE_NAMES} | {"sequence"}
    assert "sequence" in set(reasons["driver"])  # the sequence model's reading carries weight
    one = reasons[(reasons["user_id"] == ex.user_id[0]) & (reasons["label"] == "churn")]
    assert list(one["rank"]) == [1, 2, 3]
    assert one["weight"].abs().is_monotonic_decreasing
