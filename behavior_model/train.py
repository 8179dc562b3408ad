"""A training run: read the lake, fit, compare with the baselines, log to MLflow, register, and
move the source's ``champion`` alias if the new version earned it.

    python -m behavior_model.train --source sample_clickstream --logical-date 2026-03-01

The label horizons and lookback come from the source mapping (``labels``); each source has its
own registered model, ``<prefix>-<source>``, with its own champion.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from datetime import date

import mlflow
import numpy as np
import pandas as pd

from behavior_model import registry, report
from behavior_model.baselines import baseline_predictions
from behavior_model.config import LABELS, TrainConfig, label_config
from behavior_model.promotion import decide_promotion, metrics_on_validation
from behavior_model.text import TextEmbedder
from behavior_model.trainer import TrainedModel, fit
from pipeline.context import RunContext
from pipeline.lake import read_partitions, without_bots

log = logging.getLogger(__name__)


def evaluation_records(
    trained: TrainedModel, events: pd.DataFrame, cfg: TrainConfig
) -> tuple[list[dict], dict, dict]:
    """The transformer and the baselines on the validation examples.

    Returns (records, labels by name, {label: {model: probabilities}}).
    """
    users, y, preds = baseline_predictions(
        events,
        train_cutoffs=trained.train_cutoffs,
        eval_cutoff=trained.val_cutoff,
        labels=cfg.labels,
        seed=cfg.seed,
    )
    ex = trained.val_examples
    if not np.array_equal(users, ex.user_id):
        raise AssertionError("baselines and the behaviour model disagree on the validation users")
    raw = trained.predictor.predict_examples(ex, calibrated=False)
    for j, label in enumerate(LABELS):
        preds[label] = {
            "behavior_model": trained.val_probabilities[:, j],
            "behavior_model_uncalibrated": raw[:, j],
        } | preds[label]
    return report.evaluation_records(y, preds), y, preds


def input_dataset(events: pd.DataFrame, ctx: RunContext):
    """The training input as an MLflow dataset: events and users per event date of the lake table
    (its digest changes when any day's data changes), with the table's path as its source."""
    days = events["event_time"].dt.strftime("%Y-%m-%d")
    daily = (
        events.groupby(days)
        .agg(events=("event_id", "size"), users=("user_id", "nunique"))
        .rename_axis("event_date")
        .reset_index()
    )
    return mlflow.data.from_pandas(
        daily, source=str(ctx.lake.sessionized_events), name=f"{ctx.source}.sessionized_events"
    )


def train_and_register(
    events: pd.DataFrame, cfg: TrainConfig, ctx: RunContext, *, embedder: TextEmbedder | None = None
) -> dict:
    """Fit, log everything to one MLflow run, register, and move the champion alias if earned."""
    registry.configure_mlflow(ctx.settings)
    name, logical_date = ctx.registered_model_name, ctx.run_date
    # Never data past the logical date, for the model and the baselines alike.
    events = events[
        events["event_time"] < pd.Timestamp(logical_date, tz="UTC") + pd.Timedelta(days=1)
    ]
    with mlflow.start_run(run_name=f"{ctx.source}-{logical_date.isoformat()}") as run:
        mlflow.set_tags({"source": ctx.source, "logical_date": logical_date.isoformat()})
        mlflow.log_params(
            cfg.flat() | {"source": ctx.source, "logical_date": logical_date.isoformat()}
        )
        mlflow.log_input(input_dataset(events, ctx), context="training")
        trained = fit(
            events,
            cfg,
            as_of=logical_date,
            embedder=embedder,
            on_epoch=lambda metrics, step: mlflow.log_metrics(metrics, step=step),
        )
        mlflow.log_params(
            {
                "val_cutoff": trained.val_cutoff.isoformat(),
                "train_cutoff_dates": ",".join(t.date().isoformat() for t in trained.train_cutoffs),
                "n_item_vocab": len(trained.predictor.vocab.items),
            }
        )
        mlflow.log_metrics(trained.val_metrics)
        records, y, preds = evaluation_records(trained, events, cfg)
        figures = report.figures(y, preds)
        registry.log_evaluation(records, report.records_markdown(records), figures)
        report.close(figures)
        mlflow.log_metrics(report.baseline_metrics(records))
        lightgbm = {
            f"{r['label']}_roc_auc": r["roc_auc"] for r in records if r["model"] == "lightgbm"
        }
        version = registry.log_model(trained.predictor, name)
        ex = trained.val_examples
        validation = dict(
            cutoff=trained.val_cutoff,
            users=ex.user_id,
            labels={"churn": ex.churn, "purchase": ex.purchase},
        )
        new = metrics_on_validation(trained.predictor, events, **validation)
        champion_version = registry.resolve_champion(name)
        old = None
        if champion_version is not None:
            champion = registry.load_version(name, champion_version)
            old = metrics_on_validation(champion, events, **validation)
            mlflow.log_metrics({f"champion_val_{k}": v for k, v in old.items()})
        decision = decide_promotion(
            new,
            old,
            margin=cfg.promotion_margin,
            lightgbm=lightgbm,
            lightgbm_margin=cfg.lightgbm_margin,
        )
        decision |= {"new_version": version, "champion_version": champion_version}
        mlflow.log_dict(decision, "promotion.json")
        registry.describe_version(
            name,
            version,
            description=(
                f"Behaviour model for {ctx.source} trained as of {logical_date} "
                f"(validation cutoff {trained.val_cutoff.date()}). Promotion: {decision['reason']}."
            ),
            tags={
                "source": ctx.source,
                "model_family": "event_transformer",
                "purchase_horizon_days": str(cfg.labels.purchase_horizon_days),
                "churn_horizon_days": str(cfg.labels.churn_horizon_days),
                "lookback_days": str(cfg.labels.lookback_days),
                "val_churn_roc_auc": f"{new['churn_roc_auc']:.4f}",
                "val_purchase_roc_auc": f"{new['purchase_roc_auc']:.4f}",
            },
        )
        if decision["promote"]:
            registry.set_champion(name, version)
        mlflow.set_tag("promoted", str(decision["promote"]).lower())
        log.info("promotion decision: %s", json.dumps(decision))
    return {
        "run_id": run.info.run_id,
        "registered_model": name,
        "model_version": version,
        "promoted": decision["promote"],
        "decision": decision,
        "val_cutoff": trained.val_cutoff.isoformat(),
        "val_metrics": trained.val_metrics,
    }


def run_training(ctx: RunContext, cfg: TrainConfig | None = None) -> dict:
    """Entry point for the DAG task and the CLI: train on the lake up to ``ctx.run_date``."""
    cfg = replace(cfg or TrainConfig(), labels=label_config(ctx.mapping.labels))
    # Bots stay in the lake but are left out of training and scoring.
    events = without_bots(read_partitions(ctx.lake.sessionized_events, end=ctx.run_date))
    log.info("%s: %d events up to %s", ctx.source, len(events), ctx.run_date)
    embedder = TextEmbedder(cfg.text_model_path, cache_dir=ctx.settings.cache_dir)
    return train_and_register(events, cfg, ctx, embedder=embedder)


def main(argv: list[str] | None = None) -> None:
    from pipeline.settings import apply_process_env

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True)
    p.add_argument("--logical-date", type=date.fromisoformat, required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    a = p.parse_args(argv)
    ctx = RunContext.create(a.source, a.logical_date, settings=apply_process_env())
    result = run_training(ctx, TrainConfig(device=a.device, epochs=a.epochs))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
