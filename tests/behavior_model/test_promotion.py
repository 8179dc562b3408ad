"""The promotion rule: margins over the champion and over LightGBM; the first version always wins."""

from __future__ import annotations

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


def test_the_best_family_on_validation_is_the_candidate():
    from behavior_model.promotion import choose_family

    def m(churn: float, purchase: float) -> dict[str, float]:
        return {"val_churn_roc_auc": churn, "val_purchase_roc_auc": purchase}

    best, means = choose_family(
        {"event_transformer": m(0.80, 0.70), "pretrained_lm": m(0.78, 0.74)}
    )
    assert best == "pretrained_lm" and means == pytest.approx(
        {"event_transformer": 0.75, "pretrained_lm": 0.76}
    )
    # A worse family is never the candidate, whatever its order; ties go to the first listed.
    assert choose_family({"a": m(0.6, 0.6), "b": m(0.7, 0.7)})[0] == "b"
    assert choose_family({"a": m(0.7, 0.7), "b": m(0.7, 0.7)})[0] == "a"
    # An undefined metric (one class in validation) never beats a defined one.
    assert choose_family({"a": m(float("nan"), 0.9), "b": m(0.51, 0.5)})[0] == "b"
    with pytest.raises(ValueError, match="no model family"):
        choose_family({})
