"""The hybrid family: stable user folds, out-of-fold sequence outputs, LightGBM on top."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from behavior_model.baselines import labelled_rows
from behavior_model.config import LABELS, TrainConfig
from behavior_model.data import eligible_users
from behavior_model.hybrid import (
    SEQ_LOGITS,
    VECTOR_PREFIX,
    HybridModel,
    cross_fit_sequence,
    sequence_outputs,
    user_fold,
    with_sequence,
)
from behavior_model.trainer import fit
from pipeline.contracts import FEATURE_NAMES


def test_user_folds_are_stable_and_balanced():
    users = np.array([f"u{i}" for i in range(3000)])
    folds = user_fold(users, 3)
    assert np.array_equal(folds, user_fold(users, 3))  # the same in every run and process
    assert user_fold(np.array(["u0"]), 3)[0] == 2  # CRC-32, not Python's salted hash
    assert np.bincount(folds).min() > 900  # about a third each


def test_cross_fitting_is_out_of_fold_and_the_hybrid_learns(sample_events):
    cfg = TrainConfig(device="cpu", epochs=1, pretrain_epochs=0)
    cfg = replace(cfg, model=replace(cfg.model, use_text=False, max_events=16))
    day = pd.Timedelta(days=1)
    t0 = sample_events["event_time"].min().floor("D")
    fit_cutoffs, val_cutoff, test_cutoff = (
        [t0 + 28 * day, t0 + 35 * day],
        t0 + 42 * day,
        t0 + 49 * day,
    )
    seen: list[set] = []
    predictors = []

    def fit_fold(events):
        seen.append(set(events["user_id"]))
        predictor = fit(events, cfg, train_cutoffs=fit_cutoffs, val_cutoff=val_cutoff).predictor
        predictors.append(predictor)
        return predictor

    cutoffs = [*fit_cutoffs, val_cutoff, test_cutoff]
    sequence = cross_fit_sequence(
        sample_events, cutoffs=cutoffs, anchor_cutoff=val_cutoff, fit_fold=fit_fold, folds=3
    )
    assert len(seen) == 3
    for t in cutoffs:
        seq = sequence[t]
        eligible = eligible_users(sample_events, t, cfg.labels)
        assert seq.index.is_unique and set(seq.index) == set(eligible)  # everyone, once
        fold = user_fold(seq.index.to_numpy(), 3)
        for k in range(3):
            # Out of fold: no user's outputs come from a transformer that trained on that user.
            assert not set(seq.index[fold == k]) & seen[k]
    # Fold 0 is the reference basis: its users' vectors are what its own transformer says.
    own = sequence_outputs(predictors[0], sample_events, test_cutoff)
    fold0 = sequence[test_cutoff].index[user_fold(sequence[test_cutoff].index.to_numpy(), 3) == 0]
    vec = sequence[test_cutoff].loc[fold0].filter(like=VECTOR_PREFIX)
    np.testing.assert_allclose(vec, own.loc[fold0].filter(like=VECTOR_PREFIX), atol=1e-3)

    train = pd.concat([labelled_rows(sample_events, t, cfg.labels) for t in cutoffs[:-1]])
    test = labelled_rows(sample_events, test_cutoff, cfg.labels)
    train_rows, test_rows = with_sequence(train, sequence), with_sequence(test, sequence)
    assert train_rows[list(SEQ_LOGITS)].notna().all().all()
    hybrid = HybridModel(n_components=4).fit(train_rows)
    assert hybrid.pca_components.shape[0] == 4
    probs = hybrid.predict(test_rows)
    for label in LABELS:
        # The planted signal: far above chance for both labels.
        assert roc_auc_score(test_rows[label], probs[label]) > 0.7, label

    with pytest.raises(ValueError, match="have no sequence outputs"):
        with_sequence(test, {test_cutoff: sequence[test_cutoff].iloc[1:]})


def test_the_hybrid_family_trains_out_of_fold_and_serves_from_its_checkpoint(sample_events):
    """fit_data with backbone "hybrid": one transformer per user fold, each trained without its
    fold's users; every user scored by its own fold's transformer; the checkpoint round-trips to
    the same scores; explanations are the stack's contributions in words."""
    from behavior_model.checkpoints import load_predictor
    from behavior_model.hybrid import HybridPredictor
    from behavior_model.trainer import fit_data
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
    logits, _ = predictor.out_of_fold(ex)
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
    cutoff = t0 + 49 * day
    by_events = served.predict_users(sample_events, cutoff)
    assert len(by_events) > 100 and by_events["churn_probability"].between(0, 1).all()

    reasons = served.explain(data.examples["val"], top_k=3)
    assert len(reasons) == 3 * len(LABELS) * len(ex)
    assert set(reasons["driver"]) <= {f"feature:{n}" for n in FEATURE_NAMES} | {"sequence"}
    assert "sequence" in set(reasons["driver"])  # the sequence model's reading carries weight
    one = reasons[(reasons["user_id"] == ex.user_id[0]) & (reasons["label"] == "churn")]
    assert list(one["rank"]) == [1, 2, 3]
    assert one["weight"].abs().is_monotonic_decreasing
