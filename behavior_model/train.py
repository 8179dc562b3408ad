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
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from behavior_model import item_embeddings, registry, report
from behavior_model.baselines import fit_and_predict
from behavior_model.config import BACKBONES, LABELS, ModelConfig, TrainConfig, label_config
from behavior_model.data import text_index_only, vocabulary_of
from behavior_model.families import fit_data
from behavior_model.fitted import TrainedModel
from behavior_model.metrics import label_metrics
from behavior_model.promotion import choose_family, decide_promotion, metrics_on_validation
from behavior_model.streaming import shard_fragments
from behavior_model.text import TextEmbedder
from behavior_model.trainer import cutoffs_for
from behavior_model.training_data import ShardData, TextPayload, TrainingData
from jobs import examples as spark_examples
from jobs.spark import get_spark
from pipeline.context import RunContext
from pipeline.lake import table_lock

log = logging.getLogger(__name__)


def evaluation_records(
    trained: TrainedModel, cfg: TrainConfig, family: str
) -> tuple[list[dict], dict, dict]:
    """The registered model (rows ``behavior_model (<family>)``, calibrated and not) and the
    baselines (fitted on the training examples' RFM features) on the validation examples.

    Returns (records, labels by name, {label: {model: probabilities}}).
    """
    data = trained.data
    val = data.table("val")
    preds = fit_and_predict(data.table("train"), val, seed=cfg.seed)
    y = data.labels("val")
    for j, label in enumerate(LABELS):
        preds[label] = {
            f"behavior_model ({family})": trained.val_probabilities[:, j],
            f"behavior_model ({family}, uncalibrated)": trained.val_raw[:, j],
        } | preds[label]
    return report.evaluation_records(y, preds), y, preds


def input_dataset(daily: pd.DataFrame, ctx: RunContext):
    """The training input as an MLflow dataset: events and users per event date of the lake table
    (its digest changes when any day's data changes), with the table's path as its source."""
    return mlflow.data.from_pandas(
        daily, source=str(ctx.lake.sessionized_events), name=f"{ctx.source}.sessionized_events"
    )


# What TrainConfig.families may list: every backbone behavior_model.families fits.
FAMILIES = BACKBONES


def config_from_params(params: dict) -> TrainConfig:
    """A run's TrainConfig from the training DAG's params (or the CLI's flags): ``device``,
    ``families`` and, each optional, ``family_margin``, ``epochs``, ``token_unit``, ``max_events``,
    ``basket_gap_minutes``, ``contrastive_weight``; the rest are TrainConfig's defaults."""
    base, model = TrainConfig(), ModelConfig()
    return replace(
        base,
        device=params.get("device", base.device),
        families=tuple(params.get("families", base.families)),
        family_margin=float(params.get("family_margin", base.family_margin)),
        epochs=int(params.get("epochs", base.epochs)),
        contrastive_weight=float(params.get("contrastive_weight", base.contrastive_weight)),
        model=replace(
            model,
            token_unit=params.get("token_unit", model.token_unit),
            max_events=int(params.get("max_events", model.max_events)),
            basket_gap_minutes=float(params.get("basket_gap_minutes", model.basket_gap_minutes)),
        ),
    )


def fit_families(data: TrainingData, cfg: TrainConfig) -> tuple[TrainedModel, str]:
    """Fit every family of ``cfg.families`` on the same examples, in the active MLflow run (each
    family's epochs and validation metrics under ``<family>.``, where there are several), and
    return the one chosen on validation (``promotion.choose_family``: a later family must lead
    the earlier beyond the validation noise and ``cfg.family_margin``) with its name. Its
    ``families`` holds how every family fared."""
    several = len(cfg.families) > 1
    fitted: dict[str, TrainedModel] = {}
    for family in cfg.families:
        prefix = f"{family}." if several else ""
        fitted[family] = fit_data(
            data,
            replace(cfg, model=replace(cfg.model, backbone=family)),
            on_epoch=lambda metrics, step, p=prefix: mlflow.log_metrics(
                {f"{p}{k}": v for k, v in metrics.items()}, step=step
            ),
        )
        if several:
            mlflow.log_metrics({f"{prefix}{k}": v for k, v in fitted[family].val_metrics.items()})
    best, table = choose_family(
        data.labels("val"),
        {f: t.val_probabilities for f, t in fitted.items()},
        margin=cfg.family_margin,
        seed=cfg.seed,
    )
    log.info("model families on validation: %s; chosen %s", json.dumps(table), best)
    trained = fitted[best]
    trained.families = table
    return trained, best


def train_and_register(
    data: TrainingData, daily: pd.DataFrame, cfg: TrainConfig, ctx: RunContext
) -> dict:
    """Fit on ``data``, log everything to one MLflow run, register, and move the champion alias if
    earned. ``daily``: events and users per event date of the input (the run's MLflow dataset)."""
    registry.configure_mlflow(ctx.settings)
    name, logical_date = ctx.registered_model_name, ctx.run_date
    with mlflow.start_run(run_name=f"{ctx.source}-{logical_date.isoformat()}") as run:
        mlflow.set_tags({"source": ctx.source, "logical_date": logical_date.isoformat()})
        mlflow.log_params(
            cfg.flat() | {"source": ctx.source, "logical_date": logical_date.isoformat()}
        )
        mlflow.log_input(input_dataset(daily, ctx), context="training")
        trained, family = fit_families(data, cfg)
        mlflow.log_params(
            {
                "val_cutoff": trained.val_cutoff.isoformat(),
                "train_cutoff_dates": ",".join(t.date().isoformat() for t in trained.train_cutoffs),
                "n_item_vocab": len(trained.predictor.vocab.items),
            }
        )
        mlflow.log_metrics(trained.val_metrics)
        records, y, preds = evaluation_records(trained, cfg, family)
        figures = report.figures(y, preds)
        registry.log_evaluation(records, report.records_markdown(records), figures)
        report.close(figures)
        mlflow.log_metrics(report.baseline_metrics(records))
        lightgbm = {
            f"{r['label']}_roc_auc": r["roc_auc"] for r in records if r["model"] == "lightgbm"
        }
        version = registry.log_model(trained.predictor, name)
        # The new version's validation probabilities from its fit (TrainingData.predict, as the
        # champion is scored below, on the training device): no second pass over those users.
        new = label_metrics(data.labels("val"), trained.val_probabilities, LABELS)
        champion_version = registry.resolve_champion(name)
        old = None
        if champion_version is not None:
            champion = registry.load_version(name, champion_version)
            old = metrics_on_validation(champion, data)
            mlflow.log_metrics({f"champion_val_{k}": v for k, v in old.items()})
        decision = decide_promotion(
            new,
            old,
            margin=cfg.promotion_margin,
            lightgbm=lightgbm,
            lightgbm_margin=cfg.lightgbm_margin,
        )
        decision |= {
            "new_version": version,
            "champion_version": champion_version,
            "family": family,
            "families": trained.families,
        }
        mlflow.log_dict(decision, "promotion.json")
        registry.describe_version(
            name,
            version,
            description=(
                f"Behaviour model ({family}) for {ctx.source} trained as of {logical_date} "
                f"(validation cutoff {trained.val_cutoff.date()}). Promotion: {decision['reason']}."
            ),
            tags={
                "source": ctx.source,
                "model_family": family,
                "purchase_horizon_days": str(cfg.labels.purchase_horizon_days),
                "churn_horizon_days": str(cfg.labels.churn_horizon_days),
                "lookback_days": str(cfg.labels.lookback_days),
                "val_churn_roc_auc": f"{new['churn_roc_auc']:.4f}",
                "val_purchase_roc_auc": f"{new['purchase_roc_auc']:.4f}",
            },
        )
        if decision["promote"]:
            registry.set_champion(name, version)
        mlflow.set_tags({"promoted": str(decision["promote"]).lower(), "model_family": family})
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


def _partition(table: Path, day: date) -> Path:
    return table / f"{spark_examples.PARTITION_COLUMN}={day.isoformat()}"


def training_data(ctx: RunContext, cfg: TrainConfig) -> tuple[ShardData, pd.DataFrame]:
    """Build the run's example shards on Spark (``<lake>/training_examples``) and return them as
    ``ShardData``, with the input's events and users per day.

    On Spark: the data's span (cutoffs), the examples at the training and validation cutoffs (with
    labels) and at the last day of data (the drift reference), the vocabulary (the most frequent
    items before the validation cutoff) and the items with a text. On the driver: only the texts
    the ``item_embeddings`` table lacks are embedded.
    """
    settings, lake = ctx.settings, ctx.lake
    spark = get_spark(settings, "behavior-model-training")
    with table_lock(lake.sessionized_events, shared=True):
        # Bots stay in the lake but are left out of training and scoring.
        events = spark_examples.without_bots(
            spark_examples.read_sessionized(spark, lake.sessionized_events, end=ctx.run_date)
        ).cache()  # read by every step below: one scan of the lake, not one per step
        try:
            first, last = spark_examples.event_span(events)
            if first is None:
                raise ValueError(
                    f"{ctx.source}: no events up to {ctx.run_date} in {lake.sessionized_events}: "
                    "has clickstream_daily run for these dates?"
                )
            train_cutoffs, val_cutoff = cutoffs_for(first, last, cfg, as_of=ctx.run_date)
            latest = min(last.floor("D"), pd.Timestamp(ctx.run_date, tz="UTC")) + pd.Timedelta(
                days=1
            )
            log.info(
                "%s: events %s..%s; training cutoffs %s, validation %s, reference %s", ctx.source,
                first, last, [str(t.date()) for t in train_cutoffs], val_cutoff.date(), latest.date(),
            )  # fmt: skip
            rows = spark_examples.training_examples(
                events, [t.to_pydatetime() for t in (*train_cutoffs, val_cutoff)],
                [latest.to_pydatetime()], lookback_days=cfg.labels.lookback_days,
                max_events=cfg.model.max_events, purchase_days=cfg.labels.purchase_horizon_days,
                churn_days=cfg.labels.churn_horizon_days,
            )  # fmt: skip
            days = [t.date() for t in (*train_cutoffs, val_cutoff, latest)]
            spark_examples.write_examples(rows, lake.training_examples, days)
            before = val_cutoff.to_pydatetime()  # the vocabulary sees no label period
            vocab = vocabulary_of(
                spark_examples.item_counts(events, before, top=cfg.model.item_vocab_size),
                spark_examples.categories(events, before),
                cfg.model,
            )
            daily = spark_examples.daily_counts(events).toPandas()
        finally:
            events.unpersist()

    present = [d for d in days if _partition(lake.training_examples, d).exists()]
    files = {
        "train": shard_fragments([_partition(lake.training_examples, t.date()) for t in train_cutoffs if t.date() in present]),
        "val": shard_fragments([_partition(lake.training_examples, val_cutoff.date())] if val_cutoff.date() in present else []),
        "latest": shard_fragments([_partition(lake.training_examples, latest.date())] if latest.date() in present else []),
    }  # fmt: skip
    empty = [part for part, f in files.items() if not f]
    if empty:
        raise ValueError(
            f"{ctx.source}: no eligible user (an event in the {cfg.labels.lookback_days} days "
            f"before the cutoff) for the {', '.join(empty)} examples; cutoffs: training "
            f"{[str(t.date()) for t in train_cutoffs]}, validation {val_cutoff.date()}, "
            f"reference {latest.date()}"
        )
    items = item_embeddings.shard_items(
        spark.read.parquet(*(str(_partition(lake.training_examples, d)) for d in present))
    )

    def texts(model: ModelConfig, text_model_path: str | None) -> TextPayload:
        """Item text vectors for a text encoder, from the item_embeddings table."""
        if not model.use_text:
            if model.backbone == "pretrained_lm":  # reads the words: texts, no vectors
                return text_index_only((text for _, text in items), model.text_dim)
            return {}, np.zeros((1, model.text_dim), np.float32)
        embedder = TextEmbedder(text_model_path, cache_dir=settings.cache_dir)
        index, table, _ = item_embeddings.refresh(
            lake.item_embeddings, items, embedder, run_date=ctx.run_date
        )
        return index, table

    def text_of(predictor) -> TextPayload:
        return texts(predictor.model.cfg, predictor.text_model_path)

    text = texts(cfg.model, cfg.text_model_path)
    data = ShardData(train_cutoffs, val_cutoff, vocab, text, files=files, text_of=text_of)
    return data, daily


def run_training(ctx: RunContext, cfg: TrainConfig | None = None) -> dict:
    """Entry point for the DAG task and the CLI: train on the lake up to ``ctx.run_date``."""
    cfg = replace(cfg or TrainConfig(), labels=label_config(ctx.mapping.labels))
    unknown = sorted(set(cfg.families) - set(FAMILIES))
    if unknown or not cfg.families:
        raise ValueError(
            f"model families {list(cfg.families)}: training registers any of {list(FAMILIES)}"
        )
    data, daily = training_data(ctx, cfg)
    log.info(
        "%s: %d events up to %s; %d training and %d validation examples", ctx.source,
        int(daily["events"].sum()), ctx.run_date, data.rows("train"), data.rows("val"),
    )  # fmt: skip
    # Shared: a second run of the same source swaps its shards in only after this one is done. A
    # cutoff's shard is a function of the cutoff and the sessionized lake, so a swap between the
    # write above and this lock replaces it with the same rows.
    with table_lock(ctx.lake.training_examples, shared=True):
        return train_and_register(data, daily, cfg, ctx)


def main(argv: list[str] | None = None) -> None:
    from pipeline.settings import apply_process_env

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True)
    p.add_argument("--logical-date", type=date.fromisoformat, required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument(
        "--families", default=",".join(TrainConfig.families),
        help=f"comma-separated, from {','.join(FAMILIES)}, simplest first: a later family is "
        "registered when its validation lead is beyond the noise and --family-margin",
    )  # fmt: skip
    p.add_argument("--family-margin", type=float, default=TrainConfig.family_margin)
    p.add_argument("--token-unit", choices=("event", "basket"), default=ModelConfig.token_unit)
    p.add_argument("--max-events", type=int, default=ModelConfig.max_events)
    p.add_argument("--basket-gap-minutes", type=float, default=ModelConfig.basket_gap_minutes)
    p.add_argument("--contrastive-weight", type=float, default=TrainConfig.contrastive_weight)
    a = p.parse_args(argv)
    ctx = RunContext.create(a.source, a.logical_date, settings=apply_process_env())
    params = vars(a) | {"families": [f.strip() for f in a.families.split(",") if f.strip()]}
    result = run_training(ctx, config_from_params(params))
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
