"""Evaluate the behaviour model against the baselines on any source, with one protocol.

    python -m behavior_model.evaluate --source online_retail \\
        --path ../shared/data/online_retail/online_retail.csv.gz \\
        --test-cutoff 2011-09-01 --train-cutoffs 2011-03-01,2011-04-01,2011-05-01,2011-06-01 \\
        --timezone Europe/London --out benchmarks/results/online_retail_eval.json

The horizons and lookback default to the mapping's ``labels`` (--purchase-horizon, --churn-horizon
and --lookback override them).

Protocol. For a cutoff T (midnight in ``--timezone``) the inputs are the events before T; eligible
users have an event in [T - lookback, T); purchase = a purchase in [T, T + H_purchase); churn = no
event of any kind (returns count) in [T, T + H_churn). Training cutoffs must satisfy
T_k + max(H) <= T_test; the test set is T_test alone. The last training cutoff is held out as the
validation cutoff: the transformer is fitted on the other cutoffs and uses it for epoch selection
and calibration; LightGBM early-stops its tree count on it, then every baseline is refitted on all
training cutoffs (as a careful analyst would: the baselines are never handicapped). The hybrid
family is the one training registers (``behavior_model.hybrid.fit_hybrid``): its fold transformers
like the transformer, its LightGBM stack fitted on the other cutoffs and stopped on the
validation cutoff, then calibrated there; like the transformer, it is not refitted on it.

Only the test cutoff is guarded: a training cutoff's label window may run past the validation
cutoff (monthly cutoffs with a 90-day churn horizon do). The closer the cutoffs, the more the
validation labels repeat what training saw: with ``--train-every 14`` on Online Retail the
validation ROC-AUC rose to 0.79 / 0.82 while the test fell to 0.73 / 0.72 and LightGBM's early
stopping, misled alike, fell with it (benchmarks/results/online_retail_eval_rolling_cutoffs.md).
``--held-out-users SHARE`` removes that leak: that share of the users (a salted hash of the id,
``data.held_out``) is validated on at the validation cutoff and never trained on, the transformer
and LightGBM's early-stopping probe train on the other users only; the baselines are then refitted
on every user as before. Rolling cutoffs (``--train-every``) need it; ``make
evaluate-online-retail`` uses 0.2. With it, weekly cutoffs on Online Retail showed what the leaky
validation hid: the transformer memorises users seen at many overlapping cutoffs and its held-out
ROC-AUC falls after the first epoch (README, Measured results).

The source is loaded through its mapping file by the pipeline's own Spark cleaning job (into
``<data>/eval/<source>/``), so any mapping works. One JSON record per (test cutoff, label, model).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from behavior_model.baselines import fit_and_predict, labelled_rows
from behavior_model.calibration import apply_columns, fit_columns, shift_to_rate
from behavior_model.config import LABELS, LabelConfig, LMConfig, ModelConfig, TrainConfig
from behavior_model.data import check_share
from behavior_model.eval_report import add_margins, markdown, metrics_table, run_environment
from behavior_model.families import fit
from behavior_model.fitted import TrainedModel, resolve_device
from behavior_model.hybrid import fit_stack
from behavior_model.metrics import binary_metrics
from behavior_model.promotion import choose_family
from behavior_model.text import TextEmbedder
from pipeline.lake import Lake, read_partitions
from pipeline.settings import Settings
from pipeline.source_mapping import SourceMapping, load_mapping

log = logging.getLogger(__name__)
# Model families beside the baselines: the event transformer, the pretrained LM (behavior_model.lm)
# and the hybrid (LightGBM on RFM features + cross-fitted transformer outputs, behavior_model.hybrid).
FAMILIES = ("behavior_model", "pretrained_lm", "hybrid")
# Events a basket-token ablation reads (an Online Retail invoice has 18 lines on average).
BASKET_EVENTS = 512
METRICS = ("n_users", "positive_rate", "roc_auc", "roc_auc_low", "roc_auc_high", "pr_auc",
           "log_loss", "brier", "ece", "lift_top_decile")  # fmt: skip


def local_midnight(day: date, tz: str) -> pd.Timestamp:
    return pd.Timestamp(day).tz_localize(tz).tz_convert("UTC")


def load_events(
    mapping: SourceMapping, path: Path, first: date, last: date, *, settings: Settings
) -> pd.DataFrame:
    """Clean the source with the pipeline's Spark job into an evaluation lake; return its events.

    The evaluation lake (``<data>/eval/<source>/``) is apart from the pipeline's: evaluating never
    touches the lake, ``etl_run_summary`` or the registry.
    """
    from jobs.ingest import ingest_range, totals
    from jobs.spark import get_spark

    lake = Lake(settings.data_dir / "eval" / mapping.name)
    load = ingest_range(
        get_spark(settings, f"evaluate-{mapping.name}"),
        mapping=mapping,
        path=path,
        first=first,
        last=last,
        lake=lake,
        pii_secret=settings.pii_secret,
    )
    log.info("%s: %s", mapping.name, json.dumps(totals(load)))
    return read_partitions(lake.events)


def event_days(
    train_cutoffs: list[pd.Timestamp], test_cutoff: pd.Timestamp, labels: LabelConfig
) -> tuple[date, date]:
    """The first and last event days an evaluation reads: the lookback before the first training
    cutoff to the longest label horizon after the test cutoff."""
    first = min(train_cutoffs).date() - timedelta(days=labels.lookback_days + 1)
    horizon = max(labels.purchase_horizon_days, labels.churn_horizon_days)
    return first, test_cutoff.date() + timedelta(days=horizon + 1)


def variants_of(
    cfg: TrainConfig, *, families: tuple[str, ...], ablations: bool
) -> dict[str, TrainConfig]:
    """The transformer-backed models an evaluation fits one by one, by report name: the event
    transformer (``behavior_model``) and, with ``ablations``, its variants that each change one
    thing of ``cfg``; the pretrained LM. (The hybrid is fitted after them, on its own folds.)"""
    variants = {"behavior_model": cfg} if "behavior_model" in families else {}
    if ablations and variants:
        variants["behavior_model_no_pretraining"] = replace(cfg, pretrain_epochs=0)
        if cfg.model.use_text:  # (not with --no-text: the configured model is that one)
            variants["behavior_model_no_text"] = replace(
                cfg, model=replace(cfg.model, use_text=False)
            )
        variants["behavior_model_no_context"] = replace(
            cfg, model=replace(cfg.model, use_context=False)
        )
        # Issue 9, item 3: the other token unit (baskets read up to BASKET_EVENTS events) and
        # contrastive pre-training, whichever the configured model does not already use.
        if cfg.model.token_unit == "event":
            variants["behavior_model_basket_tokens"] = replace(cfg, model=replace(
                cfg.model, token_unit="basket", max_events=max(cfg.model.max_events, BASKET_EVENTS)
            ))  # fmt: skip
        else:
            variants["behavior_model_event_tokens"] = replace(
                cfg, model=replace(cfg.model, token_unit="event")
            )
        if not cfg.contrastive_weight:
            variants["behavior_model_contrastive"] = replace(cfg, contrastive_weight=0.5)
    if "pretrained_lm" in families:
        variants["pretrained_lm"] = replace(
            cfg, model=replace(cfg.model, backbone="pretrained_lm", use_text=False)
        )
    return variants


def evaluate(
    events: pd.DataFrame,
    *,
    test_cutoff: pd.Timestamp,
    train_cutoffs: list[pd.Timestamp],
    cfg: TrainConfig,
    bootstrap: int = 200,
    ablations: bool = True,
    families: tuple[str, ...] = ("behavior_model",),
    embedder: TextEmbedder | None = None,
    timezone: str = "UTC",
    held_out_share: float | None = None,
) -> tuple[list[dict], pd.DataFrame]:
    """One record per (label, model) on the test cutoff, and every test user's probability by
    every model (columns ``<label>_<model>`` beside user_id, test_cutoff and the labels).
    ``families``: any of ``FAMILIES`` (none = the baselines alone); the ablations are the event
    transformer's. ``held_out_share``: validate on users held out of training (module
    docstring)."""
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown model families {unknown}; known: {list(FAMILIES)}")
    horizon = pd.Timedelta(
        days=max(cfg.labels.purchase_horizon_days, cfg.labels.churn_horizon_days)
    )
    bad = [t for t in train_cutoffs if t + horizon > test_cutoff]
    if bad:
        raise ValueError(
            f"training cutoffs {[str(t.date()) for t in bad]} have label windows past the test cutoff"
        )
    if len(train_cutoffs) < 2:
        raise ValueError(
            "give at least two training cutoffs: the last one is the validation cutoff"
        )
    fit_cutoffs, val_cutoff = sorted(train_cutoffs)[:-1], sorted(train_cutoffs)[-1]

    # Baselines on every training cutoff, LightGBM early-stopped on the validation cutoff.
    train = pd.concat(
        [labelled_rows(events, t, cfg.labels) for t in sorted(train_cutoffs)], ignore_index=True
    )
    test = labelled_rows(events, test_cutoff, cfg.labels)
    test_users = test["user_id"].to_numpy()
    test_y = {label: test[label].to_numpy() for label in LABELS}
    preds = fit_and_predict(train, test, seed=cfg.seed, held_out_share=held_out_share)

    variants = variants_of(cfg, families=families, ablations=ablations)
    extra: dict[str, dict[str, float]] = {}
    # The families as fitted, for the choice a training run would make among them.
    fitted_families: dict[str, TrainedModel] = {}

    def score(name: str, trained: TrainedModel, t0: float) -> None:
        """A fitted family's probabilities on the test cutoff, with its validation ROC-AUC and
        its ECE uncalibrated and with the validation cutoff's own base rate."""
        if embedder is not None:
            trained.predictor.embedder = embedder
        ex = trained.predictor.examples(events, test_cutoff, with_labels=True)
        if not np.array_equal(ex.user_id, test_users):
            raise AssertionError(f"{name} and the baselines disagree on the eligible test users")
        probs = trained.predictor.predict_examples(ex)
        raw = trained.predictor.predict_examples(ex, calibrated=False)
        # The calibration ablation: Platt with the validation cutoff's own base rate.
        raw_val = trained.data.predict(trained.predictor, "val", calibrated=False)
        last_prior = apply_columns(raw, fit_columns(raw_val, trained.data.labels("val"), LABELS))
        for j, label in enumerate(LABELS):
            preds[label][name] = probs[:, j]
            extra[f"{name}/{label}"] = {
                "ece_uncalibrated": binary_metrics(test_y[label], raw[:, j])["ece"],
                "ece_validation_prior": binary_metrics(test_y[label], last_prior[:, j])["ece"],
                # What a variant may be chosen on (never the test cutoff's figures).
                "val_roc_auc": trained.val_metrics[f"val_{label}_roc_auc"],
                "train_seconds": round(time.time() - t0, 1),
            }
        if name in FAMILIES:
            fitted_families[name] = trained
        log.info("%s trained and scored in %.0fs", name, time.time() - t0)

    def fit_variant(variant: TrainConfig) -> TrainedModel:
        return fit(
            events, variant, train_cutoffs=fit_cutoffs, val_cutoff=val_cutoff, embedder=embedder,
            held_out_share=held_out_share,
        )  # fmt: skip

    for name, variant in variants.items():
        t0 = time.time()
        score(name, fit_variant(variant), t0)

    if "hybrid" in families:
        # The registered family itself (behavior_model.hybrid.fit_hybrid); its ablation re-fits
        # the stack alone on the same fold transformers, without the vector components.
        t0 = time.time()
        hybrid = fit_variant(replace(cfg, model=replace(cfg.model, backbone="hybrid")))
        score("hybrid", hybrid, t0)
        if ablations:
            t0 = time.time()
            logits_only = fit_stack(
                hybrid.data, hybrid.predictor.folds, replace(cfg, hybrid_components=0)
            )
            score("hybrid_no_vectors", logits_only, t0)

    for name, row in chosen_on_validation(fitted_families, families, cfg).items():
        for label in LABELS:
            extra[f"{name}/{label}"] |= row

    records = []
    for label in ("purchase", "churn"):
        for model, p in preds[label].items():
            m = binary_metrics(test_y[label], p, bootstrap=bootstrap)
            rec = {
                # The protocol's date (midnight in ``timezone``), and the exact instant.
                "test_cutoff": test_cutoff.tz_convert(timezone).date().isoformat(),
                "test_cutoff_utc": test_cutoff.tz_convert("UTC").isoformat(),
                "label": label,
                "model": model,
                # What the variants were validated on: None = every user at the validation
                # cutoff, else the share of users held out of training.
                "held_out_share": held_out_share,
                # Every model's seed (--seed), the baselines' included.
                "seed": cfg.seed,
            }
            # Without a bootstrap (--bootstrap 0) the interval is NaN, not missing.
            rec |= {k: m.get(k, math.nan) for k in METRICS} | extra.get(f"{model}/{label}", {})
            # Diagnostic, never a model: the ECE left if the test cutoff's base rate were known.
            known = shift_to_rate(p, float(np.mean(test_y[label])))
            rec["ece_known_rate"] = binary_metrics(test_y[label], known)["ece"]
            records.append(rec)
    predictions = pd.DataFrame(
        {"test_cutoff": records[0]["test_cutoff"], "user_id": test_users}
        | {label: test_y[label] for label in LABELS}
        | {f"{label}_{model}": p for label in LABELS for model, p in preds[label].items()}
    )
    return add_margins(records, preds, test_y, bootstrap=bootstrap), predictions


def chosen_on_validation(
    fitted: dict[str, TrainedModel], order: tuple[str, ...], cfg: TrainConfig
) -> dict[str, dict]:
    """Per fitted family, how the choice a training run makes among them
    (``promotion.choose_family``, families in the order given, ``cfg.family_margin``) weighed
    it on the validation cutoff: ``val_mean_roc_auc``, ``val_lead`` [``val_lead_low``,
    ``val_lead_high``] over ``val_lead_against``, and ``chosen_on_validation``."""
    names = [f for f in order if f in fitted]
    if not names:
        return {}
    users = fitted[names[0]].data.table("val")["user_id"].to_numpy()
    for name in names[1:]:
        if not np.array_equal(fitted[name].data.table("val")["user_id"].to_numpy(), users):
            raise AssertionError(f"{name} and {names[0]} were validated on different users")
    _, table = choose_family(
        fitted[names[0]].data.labels("val"),
        {name: fitted[name].val_probabilities for name in names},
        margin=cfg.family_margin,
        seed=cfg.seed,
    )
    return {
        name: {
            "val_mean_roc_auc": row["mean_roc_auc"],
            "val_lead_against": row.get("against"),
            "val_lead": row.get("lead", math.nan),
            "val_lead_low": row.get("lead_low", math.nan),
            "val_lead_high": row.get("lead_high", math.nan),
            "chosen_on_validation": row["chosen"],
        }
        for name, row in table.items()
    }


def log_to_mlflow(settings: Settings, source: str, records: list[dict], files: list[Path]) -> str:
    """One MLflow run per evaluation (experiment ``<training experiment>-evaluation``): every
    model's test metrics and margins, the command and device, the JSON and markdown report."""
    import mlflow

    from behavior_model import registry

    registry.configure_mlflow(
        settings,
        experiment=f"{settings.mlflow_experiment}-evaluation",
        description="Offline evaluations (python -m behavior_model.evaluate): every model family, "
        "ablation and baseline on held-out test cutoffs, with the margin over the best baseline.",
    )
    cutoffs = sorted({r["test_cutoff"] for r in records})
    with mlflow.start_run(run_name=f"{source}-{'+'.join(cutoffs)}") as run:
        first = records[0]
        mlflow.set_tags({"source": source, "test_cutoffs": ",".join(cutoffs),
                         "device": first["device"], "torch": first["torch"]})  # fmt: skip
        mlflow.log_param("command", first["command"][:6000])
        mlflow.set_tags({
            f"chosen_on_validation.{r['test_cutoff']}": r["model"]
            for r in records if r.get("chosen_on_validation")
        })  # fmt: skip
        metrics = {}
        for r in records:
            key = f"{r['test_cutoff']}.{r['label']}.{r['model']}"
            for name in ("roc_auc", "pr_auc", "log_loss", "ece", "margin_roc_auc"):
                value = r.get(name)
                if value is not None and not math.isnan(value):
                    metrics[f"{key}.{name}"] = float(value)
        mlflow.log_metrics(metrics)
        for path in files:
            mlflow.log_artifact(str(path))
    return run.info.run_id


def training_dates(listed: str, every: int | None = None) -> list[date]:
    """The training cutoff dates: the comma-separated list, or with ``every`` (days) a rolling
    series from its first date to its last (which stays the last: the validation cutoff)."""
    dates = sorted(date.fromisoformat(d.strip()) for d in listed.split(",") if d.strip())
    if every is None:
        return dates
    if every < 1 or len(dates) < 2:
        raise ValueError("--train-every needs a positive number of days and two --train-cutoffs")
    first, last = dates[0], dates[-1]
    rolling = [first + timedelta(days=k) for k in range(0, (last - first).days, every)]
    return [*rolling, last]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True, help="mapping name or path to a mapping file")
    p.add_argument(
        "--path", type=Path, help="raw file or folder (cleaned by the pipeline's Spark job)"
    )
    p.add_argument(
        "--events", type=Path, help="or: an already-cleaned lake events folder (no Spark)"
    )
    p.add_argument("--test-cutoff", type=date.fromisoformat, required=True)
    p.add_argument(
        "--train-cutoffs", required=True, help="comma-separated dates; the last is validation"
    )
    p.add_argument("--purchase-horizon", type=int, help="days (default: the mapping's labels)")
    p.add_argument("--churn-horizon", type=int, help="days (default: the mapping's labels)")
    p.add_argument("--lookback", type=int, help="days (default: the mapping's labels)")
    p.add_argument("--timezone", default="UTC", help="cutoffs are midnights in this zone")
    p.add_argument(
        "--out", type=Path, required=True, help="JSON records (a .md table is written beside)"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument(
        "--seed", type=int, default=TrainConfig.seed,
        help="every model's seed (baselines included): rerun with others to see the spread",
    )  # fmt: skip
    p.add_argument(
        "--no-text", action="store_true",
        help="the event transformer without item-text vectors (no text encoder is loaded)",
    )  # fmt: skip
    p.add_argument("--max-events", type=int, default=64)
    p.add_argument(
        "--token-unit", choices=("event", "basket"), default=ModelConfig.token_unit,
        help="the event transformer's positions: events, or baskets (raise --max-events)",
    )  # fmt: skip
    p.add_argument("--basket-gap-minutes", type=float, default=ModelConfig.basket_gap_minutes)
    p.add_argument(
        "--contrastive-weight", type=float, default=TrainConfig.contrastive_weight,
        help="contrastive pre-training beside next-event prediction (0 = off)",
    )  # fmt: skip
    p.add_argument(
        "--train-every", type=int, metavar="DAYS",
        help="rolling cutoffs: every DAYS days from the first --train-cutoffs date to the last "
        "(see the docstring: close cutoffs make validation leak; give --held-out-users)",
    )  # fmt: skip
    p.add_argument(
        "--held-out-users", type=float, metavar="SHARE",
        help="validate on this share of the users (e.g. 0.2), never trained on: no leak through "
        "label windows that overlap the validation cutoff's",
    )  # fmt: skip
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--no-ablations", action="store_true")
    p.add_argument(
        "--baselines-only",
        action="store_true",
        help="fit and report the baselines only (minutes instead of an hour on a CPU)",
    )
    p.add_argument(
        "--families",
        help=f"comma-separated, from {','.join(FAMILIES)}; default: behavior_model and hybrid, "
        "plus pretrained_lm where a GPU is present (on a CPU it takes hours)",
    )
    p.add_argument(
        "--hybrid-folds", type=int, default=TrainConfig.hybrid_folds,
        help="user folds the hybrid family's transformers are cross-fitted over",
    )  # fmt: skip
    p.add_argument(
        "--family-margin", type=float, default=TrainConfig.family_margin,
        help="the lead a later family needs on validation to be chosen (as in training)",
    )  # fmt: skip
    p.add_argument("--lm-path", help="the pretrained LM: a local HF folder or .gguf file")
    p.add_argument("--lm-token-budget", type=int, default=LMConfig.token_budget)
    p.add_argument("--lm-epochs", type=int, default=LMConfig.epochs)
    p.add_argument("--append", action="store_true", help="add to the records already in --out")
    p.add_argument(
        "--predictions", type=Path, help="also write every test user's probabilities (Parquet)"
    )
    p.add_argument(
        "--no-mlflow", action="store_true", help="do not log the report to the MLflow store"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from pipeline.settings import apply_process_env

    a = parse_args(argv)
    if a.held_out_users is not None:  # before the source is loaded, not after
        try:
            check_share(a.held_out_users)
        except ValueError as e:
            raise SystemExit(f"--held-out-users: {e}") from None
    if a.train_every is not None and a.held_out_users is None:
        log.warning(
            "--train-every without --held-out-users: cutoffs closer than the label horizon make "
            "the validation leak (module docstring)"
        )
    settings = apply_process_env()
    mapping = load_mapping(a.source)
    m = mapping.labels
    labels = LabelConfig(
        a.purchase_horizon or m.purchase_horizon_days,
        a.churn_horizon or m.churn_horizon_days,
        a.lookback or m.lookback_days,
    )
    lm = LMConfig(
        model_path=a.lm_path, cache_dir=str(settings.cache_dir / "lm"),
        token_budget=a.lm_token_budget, epochs=a.lm_epochs,
    )  # fmt: skip
    cfg = TrainConfig(
        labels=labels, device=a.device, epochs=a.epochs, lm=lm, hybrid_folds=a.hybrid_folds,
        contrastive_weight=a.contrastive_weight, family_margin=a.family_margin, seed=a.seed,
    )  # fmt: skip
    if a.baselines_only:
        families: tuple[str, ...] = ()
    elif a.families:
        families = tuple(f.strip() for f in a.families.split(",") if f.strip())
    else:
        on_gpu = resolve_device(a.device).type == "cuda"
        families = FAMILIES if on_gpu else tuple(f for f in FAMILIES if f != "pretrained_lm")
    cfg = replace(cfg, model=replace(
        cfg.model, max_events=a.max_events, token_unit=a.token_unit,
        basket_gap_minutes=a.basket_gap_minutes, use_text=not a.no_text,
    ))  # fmt: skip
    test_cutoff = local_midnight(a.test_cutoff, a.timezone)
    train_cutoffs = [
        local_midnight(d, a.timezone) for d in training_dates(a.train_cutoffs, a.train_every)
    ]
    first, last = event_days(train_cutoffs, test_cutoff, labels)
    t0 = time.time()
    if a.events is not None:
        events = read_partitions(a.events)
    elif a.path is not None:
        events = load_events(mapping, a.path, first, last, settings=settings)
    else:
        raise SystemExit("give --path (raw data) or --events (a cleaned lake events folder)")

    embedder = (
        TextEmbedder(cfg.text_model_path, cache_dir=settings.cache_dir)
        if cfg.model.use_text
        else None
    )
    records, predictions = evaluate(
        events, test_cutoff=test_cutoff, train_cutoffs=train_cutoffs, cfg=cfg,
        bootstrap=a.bootstrap, ablations=not a.no_ablations, families=families, embedder=embedder,
        timezone=a.timezone, held_out_share=a.held_out_users,
    )  # fmt: skip
    command = "python -m behavior_model.evaluate " + " ".join(argv or sys.argv[1:])
    run = run_environment(resolve_device(a.device)) | {"command": command}
    records = [r | run for r in records]
    if a.append and a.out.exists():
        records = json.loads(a.out.read_text()) + records
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(
        json.dumps(
            records,
            indent=2,
            default=lambda x: None if isinstance(x, float) and math.isnan(x) else x,
        )
    )
    a.out.with_suffix(".md").write_text(markdown(mapping.name, records))
    if a.predictions is not None:
        a.predictions.parent.mkdir(parents=True, exist_ok=True)
        predictions.to_parquet(a.predictions, index=False)
    print(metrics_table(records))
    if not a.no_mlflow:
        run_id = log_to_mlflow(settings, mapping.name, records, [a.out, a.out.with_suffix(".md")])
        log.info("logged to MLflow run %s", run_id)
    log.info("evaluation finished in %.0fs", time.time() - t0)


if __name__ == "__main__":
    main()
