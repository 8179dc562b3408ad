"""The evaluate command on a source it has never seen: only a mapping file and a CSV export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

from behavior_model.evaluate import main
from pipeline.sample_data import SampleConfig, canonical_events

pytestmark = pytest.mark.slow

MAPPING = """
name: unseen_shop
format: csv
csv_delimiter: ";"
columns: {event_id: ref, user_id: customer, event_time: when, event_type: action, item_id: sku,
          category: section, item_text: title, price: amount, quantity: units}
timestamp: {format: "dd/MM/yyyy HH:mm:ss", timezone: America/New_York}
event_types: {pv: view, atc: cart, fav: wishlist, buy: purchase, rtn: return}
labels: {purchase_horizon_days: 7, churn_horizon_days: 14, lookback_days: 28}
"""
ACTIONS = {"view": "pv", "cart": "atc", "wishlist": "fav", "purchase": "buy", "return": "rtn"}


def test_evaluate_any_source_from_its_mapping_file(tmp_path, spark, isolated_settings):
    events = canonical_events(SampleConfig(days=60, users=300, seed=5))
    local = events["event_time"].dt.tz_convert("America/New_York").dt.strftime("%d/%m/%Y %H:%M:%S")
    export = events.assign(
        when=local,
        action=events["event_type"].map(ACTIONS),
        title=events["item_text"].str.replace(";", " "),
    ).rename(columns={"event_id": "ref", "user_id": "customer", "item_id": "sku", "category": "section",
                      "price": "amount", "quantity": "units"})  # fmt: skip
    cols = ["ref", "customer", "when", "action", "sku", "section", "title", "amount", "units"]
    export[cols].to_csv(tmp_path / "export.csv", sep=";", index=False)
    (tmp_path / "unseen_shop.yaml").write_text(MAPPING)
    out = tmp_path / "eval.json"

    main([
        "--source", str(tmp_path / "unseen_shop.yaml"), "--path", str(tmp_path / "export.csv"),
        "--test-cutoff", "2026-02-15", "--train-cutoffs", "2026-01-11,2026-01-18,2026-01-25,2026-02-01",
        "--timezone", "America/New_York", "--out", str(out),
        "--no-ablations", "--epochs", "2", "--bootstrap", "20", "--device", "cpu", "--seed", "5",
        "--families", "behavior_model,hybrid", "--hybrid-folds", "2",
        # Weekly cutoffs, a 14-day churn horizon: validate on users never trained on.
        "--held-out-users", "0.3",
        "--predictions", str(tmp_path / "predictions.parquet"),
    ])  # fmt: skip

    records = json.loads(out.read_text())
    assert {(r["label"], r["model"]) for r in records} == {
        (label, model)
        for label in ("purchase", "churn")
        for model in ("recency", "logistic_regression", "lightgbm", "behavior_model", "hybrid")
    }
    preds = pd.read_parquet(tmp_path / "predictions.parquet")
    auc = {(r["label"], r["model"]): r["roc_auc"] for r in records}
    for r in records:
        if r["model"] not in ("behavior_model", "hybrid"):
            assert "margin_roc_auc" not in r
            continue
        # The margin is over the better of logistic regression and LightGBM, on the same users.
        best = max(("logistic_regression", "lightgbm"), key=lambda b: auc[(r["label"], b)])
        assert r["best_baseline"] == best
        assert r["margin_roc_auc"] == pytest.approx(
            auc[(r["label"], r["model"])] - auc[(r["label"], best)]
        )
        assert r["margin_low"] <= r["margin_roc_auc"] <= r["margin_high"]
        assert r["margin_roc_auc"] == pytest.approx(
            roc_auc_score(preds[r["label"]], preds[f"{r['label']}_{r['model']}"])
            - roc_auc_score(preds[r["label"]], preds[f"{r['label']}_{best}"])
        )
        assert r["device"].startswith("CPU") and r["torch"] and "--families" in r["command"]
    for r in records:
        assert r["test_cutoff"] == "2026-02-15" and r["n_users"] > 100
        assert r["held_out_share"] == 0.3 and r["seed"] == 5
        assert r["roc_auc_low"] <= r["roc_auc"] <= r["roc_auc_high"]
        assert 0 <= r["ece"] <= 1 and r["lift_top_decile"] > 0 and 0 < r["positive_rate"] < 1
        # The known-rate diagnostic, for every model: the test base rate met, ranking kept.
        assert 0 <= r["ece_known_rate"] <= 1
    best = max(r["roc_auc"] for r in records if r["label"] == "purchase")
    assert best > 0.65  # the planted signal survives a foreign format, zone and vocabulary
    report = out.with_suffix(".md").read_text()
    assert "| 2026-02-15 | purchase | lightgbm |" in report
    lgbm = next(r for r in records if (r["label"], r["model"]) == ("purchase", "lightgbm"))
    assert f"| {lgbm['ece']:.3f} (known rate {lgbm['ece_known_rate']:.3f}) |" in report
    assert "## Margin over the best baseline" in report and "| hybrid |" in report
    assert "| 30% of users, held out of training, at the last training cutoff |" in report
    hybrid = next(r for r in records if (r["label"], r["model"]) == ("churn", "hybrid"))
    assert f"{hybrid['margin_roc_auc']:+.3f} [" in report
    # The family a training run would register, weighed on validation as training weighs it:
    # the hybrid (listed second) against the event transformer, one choice per test cutoff.
    transformer = next(
        r for r in records if (r["label"], r["model"]) == ("churn", "behavior_model")
    )
    assert (
        hybrid["val_lead_against"] == "behavior_model" and transformer["val_lead_against"] is None
    )
    assert hybrid["val_lead"] == pytest.approx(
        hybrid["val_mean_roc_auc"] - transformer["val_mean_roc_auc"]
    )
    assert transformer["val_mean_roc_auc"] == pytest.approx(
        np.mean([r["val_roc_auc"] for r in records if r["model"] == "behavior_model"])
    )
    assert hybrid["chosen_on_validation"] == (hybrid["val_lead_low"] > 0)
    assert transformer["chosen_on_validation"] != hybrid["chosen_on_validation"]
    chosen = hybrid if hybrid["chosen_on_validation"] else transformer
    row = f"| 2026-02-15 | {chosen['model']} | {chosen['val_mean_roc_auc']:.3f} |"
    assert row in report and report.count("| **yes** |") == 1
    assert f"churn: chosen on validation **{chosen['model']}**" in report

    # The same report in MLflow, in its own experiment (never the training one or the registry).
    client = MlflowClient(isolated_settings.mlflow_tracking_uri)
    exp = client.get_experiment_by_name(f"{isolated_settings.mlflow_experiment}-evaluation")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.metrics["2026-02-15.churn.hybrid.roc_auc"] == pytest.approx(
        auc[("churn", "hybrid")]
    )
    assert run.data.tags["chosen_on_validation.2026-02-15"] == chosen["model"]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"eval.json", "eval.md"}
    assert client.search_registered_models() == []


def test_unknown_families_are_named_before_anything_runs():
    import pandas as pd

    from behavior_model.config import TrainConfig
    from behavior_model.evaluate import evaluate

    t = pd.Timestamp("2026-02-01", tz="UTC")
    with pytest.raises(ValueError, match=r"unknown model families \['gpt'\]"):
        evaluate(
            pd.DataFrame(), test_cutoff=t, train_cutoffs=[t], cfg=TrainConfig(), families=("gpt",)
        )


def test_rolling_training_cutoffs_end_on_the_validation_cutoff():
    from datetime import date

    from behavior_model.evaluate import training_dates

    assert training_dates("2011-04-01,2011-03-01") == [date(2011, 3, 1), date(2011, 4, 1)]
    weekly = training_dates("2011-03-01,2011-04-01", 7)
    assert weekly == [date(2011, 3, d) for d in (1, 8, 15, 22, 29)] + [date(2011, 4, 1)]
    with pytest.raises(ValueError, match="two --train-cutoffs"):
        training_dates("2011-03-01", 7)


def test_the_choice_table_has_one_row_per_cutoff_and_family_whatever_the_labels():
    from behavior_model.eval_report import choice_table

    lead = dict(val_lead=0.004, val_lead_low=-0.009, val_lead_high=0.015)
    records = [
        dict(label=label, model=model, test_cutoff="2026-02-15T00:00:00", val_mean_roc_auc=auc,
             val_lead_against=against, chosen_on_validation=chosen, **(lead if against else {}))
        for label in ("purchase", "repeat_visit")  # no particular label needed
        for model, auc, against, chosen in (
            ("behavior_model", 0.763, None, True), ("hybrid", 0.767, "behavior_model", False)
        )
    ]  # fmt: skip
    rows = choice_table(records).splitlines()[2:]
    assert rows == [
        "| 2026-02-15 | behavior_model | 0.763 |  | (listed first) | **yes** |",
        "| 2026-02-15 | hybrid | 0.767 | behavior_model | +0.004 [-0.009, +0.015] | no |",
    ]


def test_each_ablation_changes_one_thing_of_the_configured_model():
    from dataclasses import replace

    from behavior_model.config import TrainConfig
    from behavior_model.evaluate import BASKET_EVENTS, variants_of

    cfg = TrainConfig()
    every = variants_of(cfg, families=("behavior_model", "hybrid"), ablations=True)
    assert list(every) == [
        "behavior_model", "behavior_model_no_pretraining", "behavior_model_no_text",
        "behavior_model_no_context", "behavior_model_basket_tokens", "behavior_model_contrastive",
    ]  # fmt: skip
    assert every["behavior_model"] is cfg
    assert every["behavior_model_no_text"] == replace(cfg, model=replace(cfg.model, use_text=False))
    assert every["behavior_model_basket_tokens"].model.max_events == BASKET_EVENTS
    assert every["behavior_model_contrastive"].contrastive_weight == 0.5
    # --no-text: the configured model is the one without text, so no ablation repeats it.
    plain = replace(cfg, model=replace(cfg.model, use_text=False, token_unit="basket"))
    some = variants_of(plain, families=("behavior_model", "pretrained_lm"), ablations=True)
    assert "behavior_model_no_text" not in some and "behavior_model_basket_tokens" not in some
    assert some["behavior_model_event_tokens"].model.token_unit == "event"
    assert not any(v.model.use_text for v in some.values())
    assert some["pretrained_lm"].model.backbone == "pretrained_lm"
    assert list(variants_of(cfg, families=("hybrid",), ablations=True)) == []
    assert list(variants_of(cfg, families=("behavior_model",), ablations=False)) == [
        "behavior_model"
    ]
