"""A training run: MLflow logging, the registry, per-source champions and horizons."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from behavior_model import registry
from behavior_model.config import TrainConfig
from behavior_model.train import run_training
from jobs.spark import get_spark
from pipeline.context import RunContext
from pipeline.contracts import FEATURE_NAMES
from pipeline.sample_data import SampleConfig, canonical_events
from pipeline.source_mapping import load_mapping
from tests.behavior_model.conftest import write_sessionized

SAMPLE = load_mapping("sample_clickstream")


@pytest.mark.slow
def test_a_worse_model_does_not_become_champion(isolated_settings):
    events = canonical_events(SampleConfig(days=45, users=500, seed=3))
    ctx = RunContext(isolated_settings, SAMPLE, date(2026, 2, 14))
    write_sessionized(ctx.lake, events)
    good = run_training(ctx, TrainConfig())
    assert good["promoted"] and good["model_version"] == "1"
    # Trained on the Spark-built shards with the default configuration, it learned the sample's
    # planted signal, for both labels.
    m = good["val_metrics"]
    assert m["val_purchase_roc_auc"] >= 0.70 and m["val_churn_roc_auc"] >= 0.70, m
    assert 0 < m["val_purchase_positive_rate"] < 1 and 0 < m["val_churn_positive_rate"] < 1
    assert m["val_purchase_n_users"] > 100
    # Deliberately worse: no pre-training, one epoch at a learning rate that cannot move the weights.
    worse_cfg = TrainConfig(
        pretrain_epochs=0, epochs=1, learning_rate=1e-7, seed=99, calibrate=False
    )
    worse = run_training(ctx, worse_cfg)
    assert worse["model_version"] == "2" and not worse["promoted"]
    d = worse["decision"]
    assert d["champion_version"] == "1" and d["new_mean_roc_auc"] < d["champion_mean_roc_auc"]
    # Version 1, loaded from the registry and scored again on the same validation users, scores
    # as its fit did: the probabilities a run weighs itself with are the registered model's.
    assert d["champion_mean_roc_auc"] == pytest.approx(
        good["decision"]["new_mean_roc_auc"], abs=1e-6
    )

    assert registry.resolve_champion(ctx.registered_model_name) == "1"
    run = mlflow.get_run(worse["run_id"])
    assert run.data.tags["promoted"] == "false"
    assert (
        "val_purchase_roc_auc" in run.data.metrics
        and "champion_val_purchase_roc_auc" in run.data.metrics
    )
    history = mlflow.MlflowClient().get_metric_history(good["run_id"], "train_loss")
    assert len(history) == TrainConfig().epochs
    losses = [h.value for h in sorted(history, key=lambda h: h.step)]
    assert losses[-1] < losses[0]
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
        for m in (
            "recency",
            "logistic_regression",
            "lightgbm",
            "behavior_model (event_transformer)",
        )
    } <= models
    assert "val_purchase_lightgbm_roc_auc" in run.data.metrics
    # The run names its input: the source's sessionized events, one row per event date.
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name == "sample_clickstream.sessionized_events"
    assert dataset.tags[0].value == "training"
    # The registered version explains itself in the registry.
    v = mlflow.MlflowClient().get_model_version(ctx.registered_model_name, "2")
    assert (
        v.tags["source"] == "sample_clickstream" and v.tags["model_family"] == "event_transformer"
    )
    assert "Promotion:" in v.description and float(v.tags["val_churn_roc_auc"]) > 0


@pytest.mark.slow
def test_horizons_come_from_the_mapping_and_each_source_has_its_own_champion(isolated_settings):
    """Bug: one champion for all sources, and horizons from code defaults tuned for the sample.

    Two sources with different label horizons in their mapping files: each training run uses its
    own source's horizons, registers its own model, and each source gets its own champion.
    """
    events = canonical_events(SampleConfig(days=50, users=200, seed=5))
    shop_b = SAMPLE.model_copy(
        update={
            "name": "shop_b",
            "labels": SAMPLE.labels.model_copy(
                update={"purchase_horizon_days": 5, "churn_horizon_days": 10, "lookback_days": 21}
            ),
        }
    )
    fast = TrainConfig(pretrain_epochs=0, epochs=1)
    fast = replace(fast, model=replace(fast.model, use_text=False))
    results = {}
    for mapping in (SAMPLE, shop_b):
        ctx = RunContext(isolated_settings, mapping, date(2026, 2, 19))
        write_sessionized(ctx.lake, events)
        results[mapping.name] = (ctx, run_training(ctx, fast))
    for name, (ctx, result) in results.items():
        params = mlflow.get_run(result["run_id"]).data.params
        labels = ctx.mapping.labels
        assert params["labels.purchase_horizon_days"] == str(labels.purchase_horizon_days)
        assert params["labels.churn_horizon_days"] == str(labels.churn_horizon_days)
        assert params["labels.lookback_days"] == str(labels.lookback_days)
        assert result["registered_model"] == f"behavior-model-{name}"
        assert result["model_version"] == "1" and result["promoted"]
        assert registry.resolve_champion(ctx.registered_model_name) == "1"
        # The validation cutoff leaves the source's longest horizon for complete labels.
        val = pd.Timestamp(result["val_cutoff"])
        assert val == pd.Timestamp("2026-02-20", tz="UTC") - pd.Timedelta(
            days=labels.churn_horizon_days
        )


@pytest.mark.slow
def test_one_champion_across_families_and_the_lm_family_is_served(
    isolated_settings, lm_folder, tmp_path
):
    """Training fits every configured family on the same shards and registers the best on
    validation, never the worse; the registry's pyfunc and the scoring executors serve the
    pretrained LM like the event transformer."""
    from behavior_model.config import LMConfig
    from behavior_model.lm import LMPredictor
    from behavior_model.spark_scoring import ScoringPayload, score_table, text_payload
    from behavior_model.training_data import ShardData

    events = canonical_events(SampleConfig(days=40, users=80, seed=4))
    ctx = RunContext(isolated_settings, SAMPLE, date(2026, 2, 9))
    write_sessionized(ctx.lake, events)
    lm = LMConfig(model_path=str(lm_folder), token_budget=48, epochs=1, batch_size=8)
    # The event transformer deliberately worse (one epoch at a learning rate that cannot move
    # its weights): the LM, which reads the same users' histories as text, must win.
    cfg = TrainConfig(
        device="cpu", pretrain_epochs=0, epochs=1, learning_rate=1e-7, lm=lm,
        families=("event_transformer", "pretrained_lm"),
    )  # fmt: skip
    result = run_training(ctx, cfg)
    d = result["decision"]
    families = d["families"]
    assert set(families) == {"event_transformer", "pretrained_lm"}
    lm = families["pretrained_lm"]
    # The better family on validation, by more than the noise of the validation users.
    assert lm["against"] == "event_transformer" and lm["lead_low"] > 0, families
    assert d["family"] == "pretrained_lm" and lm["chosen"]
    assert d["new_mean_roc_auc"] == pytest.approx(lm["mean_roc_auc"], abs=1e-6)
    assert result["promoted"] and result["model_version"] == "1"
    assert registry.resolve_champion(ctx.registered_model_name) == "1"
    client = mlflow.MlflowClient()
    version = client.get_model_version(ctx.registered_model_name, "1")
    assert (
        version.tags["model_family"] == "pretrained_lm" and "(pretrained_lm)" in version.description
    )
    run = mlflow.get_run(result["run_id"])
    assert run.data.tags["model_family"] == "pretrained_lm"
    for family in families:
        assert f"{family}.val_churn_roc_auc" in run.data.metrics

    # The one pyfunc serves the LM version. (Each check below scores a few users: every LM pass
    # over all of them costs seconds on a CPU, and a user's scores depend on their rows alone.)
    lm_predictor = registry.load_version(ctx.registered_model_name, "1")
    assert isinstance(lm_predictor, LMPredictor)
    cutoff = pd.Timestamp("2026-02-10", tz="UTC")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{ctx.registered_model_name}@champion")
    few = events[events["user_id"].isin(sorted(events["user_id"].unique())[:24])]
    naive = few.assign(event_time=few["event_time"].dt.tz_localize(None))  # UTC, as MLflow wants
    served = pyfunc.predict(naive, params={"cutoff": cutoff.isoformat()})
    direct = lm_predictor.predict_users(few, cutoff)
    assert len(served) > 10
    pd.testing.assert_frame_equal(served.reset_index(drop=True), direct.reset_index(drop=True))
    # ... and so does the scoring executors' function, on rows of the run's validation shard.
    shard = ctx.lake.training_examples / f"cutoff_date={pd.Timestamp(result['val_cutoff']).date()}"
    spark = get_spark(isolated_settings, "test-lm-scoring")
    text_index, text_table = text_payload(
        spark.read.parquet(str(shard)), lm_predictor, items=ctx.lake.item_embeddings,
        run_date=ctx.run_date,
    )  # fmt: skip
    assert text_index  # the LM reads the item texts as words
    table = pq.read_table(sorted(shard.rglob("*.parquet"))[0]).slice(0, 12)
    pq.write_table(table, tmp_path / "val_rows.parquet")
    payload = ScoringPayload("lm:1", lm_predictor.to_bytes(), text_index, text_table)
    scored = score_table(table, payload).to_pandas()
    assert len(scored) == 12
    files = {"val": [str(tmp_path / "val_rows.parquet")]}
    data = ShardData([], cutoff, lm_predictor.vocab, (text_index, text_table), files=files)
    expected = pd.DataFrame(
        data.predict(lm_predictor, "val"), columns=["churn", "purchase"],
        index=data.table("val")["user_id"],
    ).loc[scored["user_id"]]  # fmt: skip
    np.testing.assert_allclose(scored["churn_probability"], expected["churn"], atol=1e-5)
    np.testing.assert_allclose(scored["purchase_probability"], expected["purchase"], atol=1e-5)
    assert len(scored["vector"].iloc[0]) == 576
    assert all(e["driver"].startswith("feature:") for row in scored["explanations"] for e in row)


@pytest.mark.slow
def test_the_hybrid_family_is_registered_and_scored_nightly_on_spark(isolated_settings):
    """The hybrid family (LightGBM on RFM features and cross-fitted transformer outputs) competes
    in the training run like any family, is registered with its fold transformers inside the one
    pyfunc, and the nightly job scores, embeds and explains users with it on Spark."""
    from behavior_model.hybrid import HybridPredictor
    from behavior_model.score import score_users
    from pipeline.lake import read_partitions, without_bots

    day = date(2026, 2, 19)
    events = canonical_events(SampleConfig(days=50, users=200, seed=5))
    ctx = RunContext(isolated_settings, SAMPLE, day)
    write_sessionized(ctx.lake, events)
    # Every transformer deliberately unable to learn (a learning rate that cannot move its
    # weights): the event transformer family stays near chance, the hybrid's stack still reads
    # the RFM features, so the hybrid must win the run.
    cfg = TrainConfig(
        device="cpu", pretrain_epochs=0, epochs=1, learning_rate=1e-7, hybrid_folds=2,
        families=("event_transformer", "hybrid"),
    )  # fmt: skip
    cfg = replace(cfg, model=replace(cfg.model, use_text=False))
    result = run_training(ctx, cfg)
    d = result["decision"]
    hybrid = d["families"]["hybrid"]
    assert hybrid["lead"] > 0.05 and hybrid["lead_low"] > 0, d["families"]
    assert d["family"] == "hybrid" and hybrid["chosen"] and result["promoted"]
    run = mlflow.get_run(result["run_id"])
    assert run.data.tags["model_family"] == "hybrid"
    table = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/evaluation/validation_table.json")
    hybrid_rows = [r for r in table if r["model"] == "behavior_model (hybrid)"]
    assert [r["roc_auc"] for r in hybrid_rows] == pytest.approx(
        [run.data.metrics[f"val_{r['label']}_roc_auc"] for r in hybrid_rows]
    )
    assert "hybrid.fold1_val_churn_roc_auc" in run.data.metrics  # each fold's epochs, logged
    version = mlflow.MlflowClient().get_model_version(ctx.registered_model_name, "1")
    assert version.tags["model_family"] == "hybrid"
    predictor = registry.load_version(ctx.registered_model_name, "1")
    assert isinstance(predictor, HybridPredictor) and len(predictor.folds) == 2

    scored = score_users(ctx)
    assert scored.model_version == "1" and scored.rows > 50
    rows = pd.DataFrame(
        ctx.warehouse.query(
            "SELECT user_id, churn_probability, purchase_probability FROM user_propensity_scores "
            "WHERE score_date = ? ORDER BY user_id", [day],
        ), columns=["user_id", "churn", "purchase"],
    )  # fmt: skip
    lake_events = without_bots(read_partitions(ctx.lake.sessionized_events, end=day))
    cutoff = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    direct = predictor.predict_users(lake_events, cutoff).sort_values("user_id")
    assert list(rows["user_id"]) == list(direct["user_id"]) and len(rows) == scored.rows
    np.testing.assert_allclose(rows["churn"], direct["churn_probability"], atol=1e-5)
    np.testing.assert_allclose(rows["purchase"], direct["purchase_probability"], atol=1e-5)
    drivers = ctx.warehouse.query(
        "SELECT driver, count(*) FROM user_score_explanations WHERE score_date = ? GROUP BY 1",
        [day],
    )
    counts = dict(drivers)
    assert sum(counts.values()) == 6 * scored.rows  # 3 reasons per label and user
    assert set(counts) <= {"sequence"} | {f"feature:{n}" for n in FEATURE_NAMES}
    dims = ctx.warehouse.query(
        "SELECT DISTINCT len(vector) FROM user_embeddings WHERE score_date = ?", [day]
    )
    assert dims == [(cfg.model.hidden_size,)]  # vectors in fold 0's basis
