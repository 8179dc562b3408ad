"""Profiles, segments, drift, realised performance and explanations, each on inputs worked out by hand."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import torch

from behavior_model import monitoring
from behavior_model.config import LABELS, LabelConfig, ModelConfig
from behavior_model.data import Vocabulary, build_examples, make_text_table
from behavior_model.explain import describe_feature, explain
from behavior_model.features import FEATURE_NAMES
from behavior_model.model import BehaviorModel
from behavior_model.profiles import PROFILE_COLUMNS, user_profiles
from behavior_model.segments import describe, segment
from tests.behavior_model.conftest import events_frame

CUTOFF = pd.Timestamp("2026-03-01", tz="UTC")


def test_profiles_by_hand():
    ev = events_frame([
        ("a", "2026-01-01 10:00", "view"),
        ("a", "2026-02-20 10:00", "purchase"),
        ("a", "2026-02-20 10:00", "purchase"),  # same basket
        ("a", "2026-02-27 12:00", "purchase"),
        ("a", "2026-02-28 12:00", "return"),
        ("b", "2026-02-28 00:00", "view"),  # a user with one event
        ("a", "2026-03-01 00:00", "purchase"),  # at the cutoff: not counted
    ])  # fmt: skip
    ev.loc[ev["user_id"] == "b", "category"] = None
    ev["price"] = 2.5
    ev["quantity"] = 2
    p = user_profiles(ev, CUTOFF, np.array(["a", "b"], dtype=object))
    assert list(p.columns) == list(PROFILE_COLUMNS)
    a, b = p.loc["a"], p.loc["b"]
    assert a["recency_days"] == pytest.approx(0.5)
    assert a["purchase_recency_days"] == pytest.approx(1.5)
    assert (a["orders"], a["monetary"]) == (2, 15.0)  # 3 purchase rows in 2 baskets, 5.0 each
    assert (a["events_7d"], a["events_30d"], a["events_90d"]) == (2, 4, 5)
    assert a["tenure_days"] == pytest.approx(58 + 14 / 24)
    assert a["avg_basket_value"] == pytest.approx(7.5)
    assert a["favourite_categories"] == "toys"
    assert a["return_share"] == pytest.approx(1 / 4)
    # One event, never bought, no category: values that do not exist are None, never NaN.
    assert (b["orders"], b["events_7d"], b["recency_days"]) == (0, 1, 1.0)
    assert b["purchase_recency_days"] is None and b["avg_basket_value"] is None
    assert b["favourite_categories"] is None and b["return_share"] is None


def test_psi_of_a_constant_reference_feature_is_finite_both_ways():
    ref = monitoring.build_reference(
        pd.DataFrame({"returns": np.zeros(500)}), pd.DataFrame({"p": np.linspace(0, 1, 500)}),
        described="test",
    )  # fmt: skip
    edges = ref["input"]["returns"]["edges"]
    assert ref["input"]["returns"]["proportions"] == [0.0, 1.0, 0.0]  # below, at, above 0
    same = monitoring.psi(
        ref["input"]["returns"]["proportions"], monitoring.proportions(np.zeros(50), edges)
    )
    assert same == pytest.approx(0.0)
    for shifted in (np.full(50, 3.0), np.full(50, -1.0)):
        value = monitoring.psi(
            ref["input"]["returns"]["proportions"], monitoring.proportions(shifted, edges)
        )
        assert np.isfinite(value) and value > 5  # all mass moved to an empty reference bin


def test_drift_statuses_and_a_missing_reference():
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"x": rng.normal(0, 1, 5000), "y": rng.normal(0, 1, 5000)})
    scores = pd.DataFrame({"churn_probability": rng.uniform(0, 1, 5000)})
    ref = monitoring.build_reference(base, scores, described="test")
    now = pd.DataFrame({"x": rng.normal(0, 1, 3000), "y": rng.normal(1.5, 1, 3000)})
    got = {d.name: d for d in monitoring.drift(ref, now, scores.iloc[:3000], warn=0.1, fail=0.25)}
    assert got["x"].status == "ok" and got["x"].psi < 0.05
    assert got["y"].status == "fail" and got["y"].psi > 0.25 and "drifted" in got["y"].message
    assert got["churn_probability"].kind == "score" and got["churn_probability"].status == "ok"
    trend = monitoring.drift(ref, now, scores.iloc[:3000], warn=0.1, fail=0.25, trend=["y"])
    assert [d.status for d in trend if d.name == "y"] == ["ok_trend"]
    missing = monitoring.drift(None, now, scores, warn=0.1, fail=0.25)
    assert {d.status for d in missing} == {"no_reference"}
    assert all(d.psi is None and "retrain" in d.message for d in missing)


def test_realised_performance_pending_undefined_and_realised():
    p = np.array([0.1, 0.8, 0.3, 0.9])
    day, done = date(2026, 3, 1), date(2026, 3, 8)
    pending = monitoring.realised_performance(None, p, score_date=day, complete_on=done)
    assert (pending.status, pending.roc_auc) == ("pending", None)
    assert "complete on 2026-03-08" in pending.message
    one_class = monitoring.realised_performance(np.ones(4), p, score_date=day, complete_on=done)
    assert one_class.status == "undefined" and one_class.roc_auc is None
    assert one_class.positive_rate == 1.0 and "undefined" in one_class.message
    ok = monitoring.realised_performance(
        np.array([0, 1, 0, 1]), p, score_date=day, complete_on=done
    )
    assert (ok.status, ok.roc_auc, ok.positive_rate) == ("realised", 1.0, 0.5)
    assert monitoring.labels_complete_on(day, 7) == done


def _blobs(centres: list[int], n: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    eye = np.eye(8)
    return np.concatenate([eye[c] * 3 + rng.normal(0, 0.05, (n, 8)) for c in centres])


def test_segments_k_by_silhouette_ids_stable_and_an_emptied_segment_reported():
    day1 = segment(_blobs([0, 1, 2]), None, None)
    assert len(day1.centroids) == 3 and day1.k_choice.startswith("silhouette")
    id_of = {c: day1.segment_of_user[c * 60] for c in range(3)}
    assert len(set(id_of.values())) == 3
    # Next day: the same three groups, users in another order: every user keeps its segment id.
    order = np.random.default_rng(1).permutation(180)
    day2 = segment(_blobs([0, 1, 2], seed=2)[order], day1.centroids, day1.k_choice)
    assert list(day2.segment_of_user) == list(day1.segment_of_user[order])
    assert day2.k_choice.startswith("kept from the previous date (silhouette")
    # The third group is gone: its id is reported emptied, the others keep theirs.
    day3 = segment(_blobs([0, 1], seed=3), day2.centroids, "silhouette")
    assert day3.emptied == [id_of[2]]
    # k is kept, so k-means puts its third centre inside a remaining group; that centre matches
    # nothing from yesterday and gets a new id (3). Nobody takes the emptied id.
    assert set(day3.segment_of_user[:60]) <= {id_of[0], 3}
    assert set(day3.segment_of_user[60:]) <= {id_of[1], 3}
    assert 3 in set(day3.segment_of_user) and id_of[2] not in set(day3.segment_of_user)


def test_segment_description_names_what_sets_it_apart():
    everyone = pd.DataFrame({
        "orders": [1, 1, 1, 1, 8, 9], "monetary": [10, 12, 9, 11, 300, 280],
        "events_30d": [5, 5, 5, 5, 5, 5], "events_7d": [1, 1, 1, 1, 1, 1],
        "recency_days": [2.0] * 6, "tenure_days": [50.0] * 6, "return_share": [0.0] * 6,
    })  # fmt: skip
    assert (
        describe(everyone.iloc[4:], everyone) == "high spend, frequent buyers"
    )  # largest ratio first
    assert describe(everyone, everyone).startswith("typical users")


def _planted_model(feature: str) -> BehaviorModel:
    """A model whose purchase logit reads one RFM feature and nothing else: the sequence's hidden
    state is zeroed (final norm weight 0) and the context path passes only ``feature`` on."""
    torch.manual_seed(0)
    cfg = ModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                      use_text=False, context_dim=len(FEATURE_NAMES), dropout=0.0)  # fmt: skip
    m = BehaviorModel(cfg, n_item_tokens=10, n_categories=4).eval()
    k = FEATURE_NAMES.index(feature)
    with torch.no_grad():
        m.backbone.norm.weight.zero_()
        first, second = m.context_mlp[0], m.context_mlp[2]
        for layer in (first, second, m.heads):
            layer.weight.zero_()
            layer.bias.zero_()
        first.weight[0, k] = 1.0
        second.weight[0, 0] = 1.0
        m.heads.weight[LABELS.index("purchase"), 0] = 2.0
    return m


def test_a_planted_driver_is_ranked_first_with_its_sign_and_words():
    ev = events_frame(
        [(u, f"2026-02-{d:02d} 10:00", "view") for u in ("a", "b", "c") for d in (20, 25)]
        + [("a", f"2026-02-{d:02d} 11:00", "purchase") for d in range(1, 28)]  # a buys a lot
        + [("d", "2026-02-27 09:00", "cart")]  # a user with one event
    )
    vocab = Vocabulary({"I1": 1}, {"toys": 1}, 4)
    model = _planted_model("purchase_baskets")
    ex = build_examples(
        ev, CUTOFF, labels=LabelConfig(), model=model.cfg, vocab=vocab,
        text_index=make_text_table(ev, None)[0], text_table=np.zeros((2, 384), np.float32),
        with_labels=False,
    )  # fmt: skip
    ctx = torch.from_numpy(ex.context)
    model.context_mean.copy_(ctx.mean(0))
    model.context_std.copy_(ctx.std(0) + 1e-6)
    drivers = explain(model, ex)
    top = drivers[(drivers["label"] == "purchase") & (drivers["rank"] == 1)].set_index("user_id")
    assert top.loc["a", "driver"] == "feature:purchase_baskets"
    assert top.loc["a", "description"] == "27 orders in the history"
    assert top.loc["a", "weight"] > 0.5
    # The planted model ignores everything else: every other driver weighs (about) nothing.
    others = drivers[
        (drivers["label"] == "purchase") & (drivers["driver"] != "feature:purchase_baskets")
    ]
    assert others["weight"].abs().max() < 1e-6
    assert (
        set(drivers["label"]) == set(LABELS)
        and drivers.groupby(["user_id", "label"]).size().max() == 3
    )


def test_ablation_weight_equals_the_logit_change_by_hand(sample_events):
    """The weight of a feature driver is logit(user) - logit(user with that feature at the mean)."""
    from dataclasses import replace

    from behavior_model.config import TrainConfig
    from behavior_model.data import collate
    from behavior_model.families import fit

    cfg = TrainConfig(pretrain_epochs=0, epochs=1, calibrate=False)
    cfg = replace(cfg, model=replace(cfg.model, use_text=False))
    model = fit(sample_events[sample_events["user_id"] < "u00300"], cfg).predictor.model
    ex = build_examples(
        sample_events, CUTOFF, labels=LabelConfig(), model=model.cfg,
        vocab=Vocabulary({}, {}, 8), text_index={}, text_table=np.zeros((1, 384), np.float32),
        with_labels=False,
    )  # fmt: skip
    drivers = explain(model, ex)
    row = drivers[
        (drivers["label"] == "churn") & drivers["driver"].str.startswith("feature:")
    ].iloc[0]
    i = list(ex.user_id).index(row["user_id"])
    k = FEATURE_NAMES.index(row["driver"].removeprefix("feature:"))
    batch = collate(ex, [i])
    with torch.no_grad():
        z = model.standardised_context(batch)
        seq = model.sequence_vector(batch)
        full = model.heads(seq + model.context_vector(z))[0, 0]
        z[0, k] = 0.0
        ablated = model.heads(seq + model.context_vector(z))[0, 0]
    assert row["weight"] == pytest.approx(float(full - ablated), abs=1e-4)
    assert describe_feature("purchase_recency_days", 41.2) == "no purchase in 41 days"
    assert describe_feature("purchase_recency_days", 400.0) == "never purchased"


def test_an_emptied_segment_keeps_a_row_that_says_so_and_its_centre():
    from behavior_model.score import segment_rows
    from behavior_model.segments import Segmentation

    seg = Segmentation(np.array([0, 0]), {0: np.array([1.0, 0.0])}, [1], "silhouette 0.4")
    profiles = pd.DataFrame({c: [1.0, 2.0] for c in PROFILE_COLUMNS})
    scores = pd.DataFrame({"churn_probability": [0.2, 0.4], "purchase_probability": [0.5, 0.7]})
    previous = {0: np.array([1.0, 0.0]), 1: np.array([0.0, 1.0])}
    rows = segment_rows(("s", date(2026, 3, 1)), "m", "1", seg, profiles, scores, previous)
    kept, emptied = rows
    # (source, date, segment, model, version, users, share, churn, purchase, recency, orders,
    #  monetary, events_30d, description, k_choice, centroid)
    assert kept[2:6] == (0, "m", "1", 2) and kept[7] == pytest.approx(0.3)
    assert emptied[2:7] == (1, "m", "1", 0, 0.0)
    assert emptied[7:13] == (None,) * 6  # no mean of nobody, and the description says why
    assert emptied[13].startswith("empty on this date") and emptied[15] == [0.0, 1.0]


def test_rounding_noise_never_moves_a_value_across_a_bin_edge():
    from behavior_model.monitoring import proportions

    edges = [1.0, 2.0, 3.0]
    exact = proportions(np.array([1.0, 2.0, 2.5, 3.0]), edges)
    noisy = proportions(np.array([1.0 - 1e-13, 2.0 + 1e-13, 2.5, 3.0 - 4e-16]), edges)
    np.testing.assert_array_equal(noisy, exact)
    assert exact.tolist() == [0.0, 0.25, 0.5, 0.25]
    # A constant reference's "at the value" bin keeps values a sum rounded the other way.
    constant = [2.0, float(np.nextafter(2.0, np.inf))]
    assert proportions(np.array([2.0, 2.0 - 1e-13, 5.0]), constant).tolist() == [0, 2 / 3, 1 / 3]


def test_drift_over_batches_equals_drift_over_the_whole_frame():
    from behavior_model.monitoring import build_reference, drift

    rng = np.random.default_rng(0)
    ref_inputs = pd.DataFrame({"a": rng.exponential(2, 500), "b": rng.integers(0, 4, 500)})
    ref_scores = pd.DataFrame({"p": rng.uniform(0, 1, 500)})
    reference = build_reference(ref_inputs, ref_scores, described="test")
    now = pd.DataFrame({"a": rng.exponential(3, 700), "b": rng.integers(0, 6, 700)})
    scores = pd.DataFrame({"p": rng.uniform(0.2, 1, 700)})
    whole = drift(reference, now, scores, warn=0.1, fail=0.25)
    parts = drift(
        reference, (now.iloc[i : i + 100] for i in range(0, 700, 100)),
        [scores.iloc[:350], scores.iloc[350:]], warn=0.1, fail=0.25,
    )  # fmt: skip
    assert [d.name for d in parts] == ["a", "b", "p"]
    for w, q in zip(whole, parts, strict=True):
        assert (w.name, w.status) == (q.name, q.status)
        assert q.psi == pytest.approx(w.psi, rel=1e-12) and w.psi > 0.01
        assert q.current_mean == pytest.approx(w.current_mean, rel=1e-12)
