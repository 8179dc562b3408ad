"""The promotion rule: margins over the champion and over LightGBM; the first version always wins."""

from __future__ import annotations

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
