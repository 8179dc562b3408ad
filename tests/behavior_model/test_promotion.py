"""The promotion rule: margins over the champion and over LightGBM; the first version always wins."""

from __future__ import annotations

import numpy as np
import pytest

from behavior_model.promotion import decide_promotion


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


def test_a_later_family_is_chosen_only_for_a_lead_beyond_the_validation_noise():
    from behavior_model.promotion import choose_family

    rng = np.random.default_rng(0)
    n = 600
    labels = {"churn": rng.integers(0, 2, n), "purchase": rng.integers(0, 2, n)}
    y = np.column_stack([labels["churn"], labels["purchase"]]).astype(float)

    def family(noise: float, seed: int) -> np.ndarray:
        return 1 / (1 + np.exp(-(y + np.random.default_rng(seed).normal(0, noise, y.shape))))

    good, better, tied = family(1.0, 1), family(0.5, 2), family(1.0, 3)
    best, table = choose_family(labels, {"event_transformer": good, "hybrid": better})
    assert (
        best == "hybrid" and table["hybrid"]["chosen"] and not table["event_transformer"]["chosen"]
    )
    assert table["hybrid"]["against"] == "event_transformer"
    assert table["hybrid"]["lead"] == pytest.approx(
        table["hybrid"]["mean_roc_auc"] - table["event_transformer"]["mean_roc_auc"]
    )
    assert 0 < table["hybrid"]["lead_low"] < table["hybrid"]["lead"] < table["hybrid"]["lead_high"]
    # A worse family is never chosen, whatever its order.
    assert choose_family(labels, {"a": better, "b": good})[0] == "a"
    # Same signal, other noise: "tied" leads on these users by chance, within the noise of 600
    # users, so the family listed first stays; a point-estimate rule (bootstrap=0) takes it.
    lead = choose_family(labels, {"a": good, "b": tied})[1]["b"]
    assert lead["lead_low"] < 0 < lead["lead"] < lead["lead_high"]
    assert choose_family(labels, {"a": good, "b": tied})[0] == "a"
    assert choose_family(labels, {"a": good, "b": tied}, bootstrap=0)[0] == "b"
    assert choose_family(labels, {"b": tied, "a": good})[0] == "b"
    # A margin: the clearly better family must lead by more than it.
    lead_low = table["hybrid"]["lead_low"]
    assert choose_family(labels, {"a": good, "b": better}, margin=lead_low + 0.01)[0] == "a"
    with pytest.raises(ValueError, match="no model family"):
        choose_family(labels, {})
