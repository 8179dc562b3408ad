"""The seed-spread report's arithmetic: margins over the better baseline of the same seed."""

from __future__ import annotations

import pytest

from benchmarks.seed_spread import markdown, rows_of, summary


def _rows():
    out = []
    # seed: (logistic regression, LightGBM, transformer, transformer without text)
    for seed, aucs in {1: (0.70, 0.72, 0.73, 0.74), 2: (0.75, 0.71, 0.74, 0.74)}.items():
        for model, auc in zip(
            ("logistic_regression", "lightgbm", "behavior_model", "behavior_model_no_text"),
            aucs,
            strict=True,
        ):
            val = None if model in ("logistic_regression", "lightgbm") else auc - 0.05 * seed
            out.append({"test_cutoff": "2011-09-01", "label": "churn", "seed": seed,
                        "model": model, "roc_auc": auc, "ece": 0.02, "val_roc_auc": val})  # fmt: skip
    return out


def test_margins_are_over_the_better_baseline_of_the_same_seed():
    table = summary(_rows()).set_index("model")
    bm = table.loc["behavior_model"]
    # seed 1: 0.73 - max(0.70, 0.72) = +0.01; seed 2: 0.74 - max(0.75, 0.71) = -0.01
    assert bm["margin"] == pytest.approx(0.0) and bm["seeds"] == 2
    assert (bm["margin_low"], bm["margin_high"]) == pytest.approx((-0.01, 0.01))
    assert (bm["low"], bm["high"], bm["roc_auc"]) == pytest.approx((0.73, 0.74, 0.735))
    assert table.loc["lightgbm", "sd"] == pytest.approx(0.00707, abs=1e-5)
    text = markdown(_rows(), {"device": "CPU", "torch": "2", "command": "c", "seconds": 1.0})
    assert (
        "| 2011-09-01 | churn | behavior_model | 2 | 0.735 | 0.007 | 0.730 | 0.740 | +0.000 |"
        in text
    )
    # no text minus text, per seed: test +0.010, +0.000; validation the same (same offsets)
    assert "| 2011-09-01 | churn | +0.010, +0.000 | +0.005 | +0.010, +0.000 | +0.005 |" in text


def test_each_baseline_is_counted_once_per_seed():
    records = [
        {"test_cutoff": "2011-09-01", "label": "churn", "model": m, "roc_auc": 0.7, "ece": 0.02}
        for m in ("recency", "logistic_regression", "lightgbm", "behavior_model")
    ]
    first = rows_of(records, variant="behavior_model", seed=3)
    second = rows_of(records, variant="behavior_model_no_text", seed=3)
    assert [r["model"] for r in first] == [
        "recency",
        "logistic_regression",
        "lightgbm",
        "behavior_model",
    ]
    assert [(r["model"], r["seed"]) for r in second] == [("behavior_model_no_text", 3)]
