"""RFM and activity-window features, computed by hand on a few rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from behavior_model.features import rfm_features, transform
from tests.behavior_model.conftest import events_frame


def test_rfm_features_on_a_hand_checked_history():
    events = events_frame([
        ("u1", "2026-01-01 10:00", "purchase", "A"), ("u1", "2026-01-01 10:00", "purchase", "B"),
        ("u1", "2026-01-21 10:00", "view", "A"), ("u1", "2026-01-25 10:00", "return", "A"),
        ("u2", "2026-01-30 10:00", "view", "C"),
        ("u1", "2026-02-02 10:00", "purchase", "A"),  # at the cutoff's day after: never counted
    ]).assign(price=[2.0, 3.0, 2.0, 2.0, 9.0, 100.0], quantity=[1, 2, 1, 1, 1, 1])  # fmt: skip
    cutoff = pd.Timestamp("2026-02-01", tz="UTC")
    f = rfm_features(events, cutoff, np.array(["u1", "u2", "u3"]))
    assert list(f.index) == ["u1", "u2", "u3"]
    u1 = f.loc["u1"]
    assert u1["recency_days"] == pytest.approx(6 + 14 / 24)  # the return on 01-25 10:00
    assert u1["tenure_days"] == pytest.approx(30 + 14 / 24)
    assert (u1["events"], u1["baskets"], u1["purchase_baskets"]) == (
        4,
        3,
        1,
    )  # one invoice, two lines
    assert u1["monetary"] == pytest.approx(2.0 + 6.0)  # views and returns carry no amount
    assert (u1["returns"], u1["distinct_items"]) == (1, 2)
    assert (u1["baskets_7d"], u1["baskets_30d"], u1["baskets_90d"]) == (1, 2, 3)
    assert u1["mean_gap_days"] == pytest.approx((30 + 14 / 24 - (6 + 14 / 24)) / 2)
    # A user without purchases gets the "never" fill; an unknown user zeros (no NaN anywhere).
    assert f.loc["u2", "purchase_recency_days"] == 400.0 and f.loc["u3", "events"] == 0
    assert not f.isna().any().any()


def test_transform_is_a_signed_log():
    x = transform(pd.DataFrame({"a": [0.0, np.e - 1, -(np.e - 1)]}))
    np.testing.assert_allclose(x[:, 0], [0.0, 1.0, -1.0])


def test_lightgbm_baseline_early_stops_on_the_last_cutoff_then_refits_on_all(sample_events):
    """The fair baseline: its tree count comes from early stopping on the last training cutoff,
    and the model that predicts is refitted on every training cutoff with that many trees."""
    from behavior_model.baselines import DEFAULT_TREES, MAX_TREES, Baselines
    from behavior_model.config import LabelConfig
    from behavior_model.data import eligible_users, make_labels

    labels = LabelConfig()
    cutoffs = [pd.Timestamp(f"2026-01-{d}", tz="UTC") for d in (19, 26)] + [
        pd.Timestamp("2026-02-02", tz="UTC")
    ]
    xs, ys, last = [], [], []
    for t in cutoffs:
        users = eligible_users(sample_events, t, labels)
        xs.append(rfm_features(sample_events, t, users))
        ys.append(make_labels(sample_events, users, t, labels)[0])
        last.append(np.full(len(users), t == cutoffs[-1]))
    x, y, last = pd.concat(xs), np.concatenate(ys), np.concatenate(last)
    model = Baselines().fit(x, y, held=last)
    assert 1 <= model.n_trees < MAX_TREES  # stopped early, on the held-out cutoff
    booster = model.models["lightgbm"].booster_
    assert booster.num_trees() == model.n_trees
    assert model.models["lightgbm"].n_features_in_ == x.shape[1]
    # Refitted on all rows: the first tree's root saw (a 0.8 bagging sample of) every row, more
    # rows than the earlier cutoffs hold.
    root = booster.dump_model()["tree_info"][0]["tree_structure"]
    assert root["internal_count"] > (~last).sum()
    assert root["internal_count"] == pytest.approx(0.8 * len(x), rel=0.02)
    assert Baselines().fit(x, y).n_trees == DEFAULT_TREES  # no held-out cutoff: the fixed default
