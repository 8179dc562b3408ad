"""MLflow: log a training run, register the model, move the ``champion`` alias, load the champion.

The logged model is an MLflow pyfunc holding the checkpoint (weights, model and label configs,
vocabulary, text encoder path): ``mlflow.pyfunc.load_model("models:/behavior-model@champion")``
gives a model whose ``predict(events, params={"cutoff": ...})`` scores every eligible user.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from behavior_model.config import TrainConfig
from behavior_model.metrics import binary_metrics
from behavior_model.predictor import BehaviorPredictor
from behavior_model.text import TextEmbedder
from behavior_model.train import TrainedModel, fit
from jobs.schema import EVENT_FIELDS
from jobs.settings import Settings, get_settings

log = logging.getLogger(__name__)

CHAMPION = "champion"


class BehaviorPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper: input = canonical events, params cutoff (ISO time, UTC)."""

    def load_context(self, context) -> None:
        self.predictor = BehaviorPredictor.load(Path(context.artifacts["checkpoint"]))

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        events = model_input.copy()
        events["event_time"] = pd.to_datetime(events["event_time"], utc=True)
        cutoff = (params or {}).get("cutoff")
        if not cutoff:  # default: the midnight after the last event
            cutoff = events["event_time"].max().floor("D") + pd.Timedelta(days=1)
        return self.predictor.predict_users(events, pd.Timestamp(cutoff))


def configure_mlflow(settings: Settings | None = None) -> str:
    """Point MLflow at the configured store; create the experiment with its artifact root."""
    settings = settings or get_settings()
    if settings.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    exp = mlflow.get_experiment_by_name(settings.mlflow_experiment)
    if exp is None:
        exp_id = mlflow.create_experiment(
            settings.mlflow_experiment, artifact_location=settings.mlflow_artifact_root
        )
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def load_champion(settings: Settings | None = None) -> tuple[BehaviorPredictor, str]:
    """The predictor behind ``models:/<name>@champion`` and its version."""
    settings = settings or get_settings()
    configure_mlflow(settings)
    name = settings.registered_model_name
    try:
        version = MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException as e:
        raise LookupError(
            f"no {name}@{CHAMPION} in the registry at {settings.mlflow_tracking_uri}: "
            "run the behavior_model_training DAG first"
        ) from e
    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    return model.unwrap_python_model().predictor, str(version.version)


def _mean_auc(metrics: dict[str, float]) -> float:
    return float(np.mean([metrics["churn_roc_auc"], metrics["purchase_roc_auc"]]))


def metrics_on_validation(
    predictor: BehaviorPredictor, trained: TrainedModel, events: pd.DataFrame
) -> dict[str, float]:
    """A predictor's metrics on ``trained``'s validation users and labels, via the scoring path.

    The new model and the champion both go through ``predict_users``, so they are compared on
    exactly the same users, labels and code path.
    """
    ex = trained.val_examples
    scores = predictor.predict_users(events, trained.val_cutoff).set_index("user_id")
    # Users a model does not score (another lookback) get its mean prediction.
    aligned = scores.reindex(ex.user_id)
    aligned = aligned.fillna(aligned.mean())
    out: dict[str, float] = {}
    for label, y in (("churn", ex.churn), ("purchase", ex.purchase)):
        for k, v in binary_metrics(y, aligned[f"{label}_probability"].to_numpy()).items():
            out[f"{label}_{k}"] = float(v)
    return out


def decide_promotion(
    new: dict[str, float],
    champion: dict[str, float] | None,
    *,
    margin: float,
    lightgbm: dict[str, float] | None = None,
    lightgbm_margin: float | None = None,
) -> dict:
    """Whether the new version takes the champion alias, and why, with the numbers.

    The first version always becomes champion (scoring needs one). Later versions must reach the
    champion's mean validation ROC-AUC + ``margin`` and, unless ``lightgbm_margin`` is None,
    LightGBM's on the same users + ``lightgbm_margin``.
    """
    new_auc = _mean_auc(new)
    out: dict = {"new_mean_roc_auc": new_auc, "margin": margin, "lightgbm_margin": lightgbm_margin}
    beats_lgbm = True
    if lightgbm is not None and lightgbm_margin is not None:
        lgbm_auc = _mean_auc(lightgbm)
        beats_lgbm = bool(new_auc >= lgbm_auc + lightgbm_margin)
        out |= {"lightgbm_mean_roc_auc": lgbm_auc, "beats_lightgbm": beats_lgbm}
    if champion is None:
        return out | {"promote": True, "reason": "first version: no champion yet"}
    if math.isnan(new_auc):
        return out | {"promote": False, "reason": "validation ROC-AUC undefined (one class only)"}
    old_auc = _mean_auc(champion)
    beats_champion = math.isnan(old_auc) or new_auc >= old_auc + margin
    promote = bool(beats_champion and beats_lgbm)
    reasons = [
        f"new {new_auc:.4f} {'>=' if beats_champion else '<'} champion {old_auc:.4f} + {margin}"
    ]
    if "lightgbm_mean_roc_auc" in out:
        reasons.append(
            f"{'>=' if beats_lgbm else '<'} LightGBM {out['lightgbm_mean_roc_auc']:.4f} + {lightgbm_margin}"
        )
    return out | {
        "promote": promote,
        "champion_mean_roc_auc": old_auc,
        "reason": "; ".join(reasons),
    }


def log_evaluation(
    trained: TrainedModel, events: pd.DataFrame, cfg: TrainConfig
) -> dict[str, float]:
    """Baselines on the same examples; the table and charts as artifacts. Returns LightGBM's metrics."""
    from behavior_model import report
    from behavior_model.evaluate import baseline_predictions

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
    for j, label in enumerate(("churn", "purchase")):
        preds[label] = {
            "behavior_model": trained.val_probabilities[:, j],
            "behavior_model_uncalibrated": raw[:, j],
        } | preds[label]
    records = report.evaluation_records(y, preds)
    mlflow.log_text(report.records_markdown(records), "evaluation/validation_table.md")
    mlflow.log_dict(records, "evaluation/validation_table.json")
    for name, make in (
        ("roc", report.roc_figure),
        ("calibration", report.calibration_figure),
        ("lift", report.lift_figure),
    ):
        fig = make(y, preds)
        mlflow.log_figure(fig, f"evaluation/{name}.png")
        report.plt.close(fig)
    baseline_metrics = {
        f"val_{r['label']}_{r['model']}_{k}": r[k]
        for r in records
        if not r["model"].startswith("behavior_model")
        for k in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile")
    }
    mlflow.log_metrics(baseline_metrics)
    return {
        f"{r['label']}_{k}": r[k] for r in records if r["model"] == "lightgbm" for k in ("roc_auc",)
    }


def pyfunc_signature() -> ModelSignature:
    """Input: canonical events (event_time as naive UTC), built from the one event contract."""
    # Spark SQL type names -> MLflow column types.
    kinds = {"string": "string", "timestamp": "datetime", "double": "double", "bigint": "long"}
    inputs = Schema(
        [
            ColSpec(kinds[spark_type], name, required=not nullable)
            for name, spark_type, _, nullable, _ in EVENT_FIELDS
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", "user_id"),
            ColSpec("double", "churn_probability"),
            ColSpec("double", "purchase_probability"),
        ]
    )
    params = ParamSchema([ParamSpec("cutoff", "string", "")])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def log_trained_model(trained: TrainedModel, settings: Settings) -> str:
    """Log the pyfunc model to the active run and register it; returns the new version."""
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = trained.predictor.save(Path(tmp) / "checkpoint.pt")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=BehaviorPyfunc(),
            artifacts={"checkpoint": str(ckpt)},
            registered_model_name=settings.registered_model_name,
            signature=pyfunc_signature(),
            # Listing requirements skips MLflow's slow inference; the project pins them.
            pip_requirements=["clickstream-propensity", "torch==2.13.0", "transformers==5.23.0"],
        )
    return str(info.registered_model_version)


def train_and_register(
    events: pd.DataFrame,
    cfg: TrainConfig,
    *,
    source: str,
    logical_date: date,
    embedder: TextEmbedder | None = None,
    settings: Settings | None = None,
) -> dict:
    """Fit, log everything to one MLflow run, register, and move the champion alias if earned."""
    settings = settings or get_settings()
    configure_mlflow(settings)
    client = MlflowClient()
    # Never data past the logical date, for the model and the baselines alike.
    events = events[
        events["event_time"] < pd.Timestamp(logical_date, tz="UTC") + pd.Timedelta(days=1)
    ]
    with mlflow.start_run(run_name=f"{source}-{logical_date.isoformat()}") as run:
        mlflow.set_tags({"source": source, "logical_date": logical_date.isoformat()})
        mlflow.log_params(cfg.flat() | {"source": source, "logical_date": logical_date.isoformat()})
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
        lightgbm = log_evaluation(trained, events, cfg)
        version = log_trained_model(trained, settings)
        new = metrics_on_validation(trained.predictor, trained, events)
        try:
            champion, champion_version = load_champion(settings)
            old = metrics_on_validation(champion, trained, events)
            mlflow.log_metrics({f"champion_val_{k}": v for k, v in old.items()})
        except LookupError:
            old, champion_version = None, None
        decision = decide_promotion(
            new,
            old,
            margin=cfg.promotion_margin,
            lightgbm=lightgbm,
            lightgbm_margin=cfg.lightgbm_margin,
        )
        decision |= {"new_version": version, "champion_version": champion_version}
        mlflow.log_dict(decision, "promotion.json")
        if decision["promote"]:
            client.set_registered_model_alias(settings.registered_model_name, CHAMPION, version)
        mlflow.set_tag("promoted", str(decision["promote"]).lower())
        log.info("promotion decision: %s", json.dumps(decision))
    return {
        "run_id": run.info.run_id,
        "model_version": version,
        "promoted": decision["promote"],
        "decision": decision,
        "val_cutoff": trained.val_cutoff.isoformat(),
        "val_metrics": trained.val_metrics,
    }
