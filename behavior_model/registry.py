"""MLflow and nothing else: the experiment, the pyfunc model, the registry and its ``champion`` alias.

The logged model is an MLflow pyfunc holding the checkpoint (weights, model and label configs,
vocabulary, text encoder path): ``mlflow.pyfunc.load_model("models:/behavior-model-<source>/<v>")``
gives a model whose ``predict(events, params={"cutoff": ...})`` scores every eligible user. Each
source has its own registered model (``Settings.registered_model_name``), so its own champion.
Scoring resolves the alias to a version once (``resolve_champion``) and loads that exact version
(``load_version``): a promotion in between cannot make rows carry another version's number.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from behavior_model.checkpoints import load_predictor
from behavior_model.serving import Predictor
from pipeline.contracts import EVENT_FIELDS
from pipeline.settings import Settings, environment_unchanged

CHAMPION = "champion"


class BehaviorPyfunc(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper: input = canonical events, params cutoff (ISO time, UTC)."""

    def load_context(self, context) -> None:
        self.predictor = load_predictor(Path(context.artifacts["checkpoint"]))

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        events = model_input.copy()
        events["event_time"] = pd.to_datetime(events["event_time"], utc=True)
        cutoff = (params or {}).get("cutoff")
        if not cutoff:  # default: the midnight after the last event
            cutoff = events["event_time"].max().floor("D") + pd.Timedelta(days=1)
        return self.predictor.predict_users(events, pd.Timestamp(cutoff))


TRAINING_DESCRIPTION = (
    "Training runs of the behaviour model: one run per source and logical date, with the "
    "validation table against the baselines and the promotion decision."
)


def configure_mlflow(
    settings: Settings, *, experiment: str | None = None, description: str = TRAINING_DESCRIPTION
) -> str:
    """Point MLflow at the configured store; create the experiment (default: the training one,
    ``Settings.mlflow_experiment``) with its artifact root and make it the active one."""
    if settings.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    with environment_unchanged("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    exp_id = _experiment(settings, experiment or settings.mlflow_experiment, description)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def _experiment(settings: Settings, name: str, description: str) -> str:
    """Get or create an experiment with its artifact root, shown in the UI as model training
    (MLflow 3 opens an experiment without that tag on its GenAI traces page)."""
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    exp_id = (
        exp.experiment_id
        if exp is not None
        else client.create_experiment(name, artifact_location=settings.mlflow_artifact_root)
    )
    if exp is None or exp.tags.get("mlflow.experimentKind") != "custom_model_development":
        client.set_experiment_tag(exp_id, "mlflow.experimentKind", "custom_model_development")
        client.set_experiment_tag(exp_id, "mlflow.note.content", description)
    return exp_id


def resolve_champion(name: str) -> str | None:
    """The version that holds ``name@champion`` now, or None when there is none."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def load_version(name: str, version: str) -> Predictor:
    """The predictor of exactly ``name`` version ``version``."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    return model.unwrap_python_model().predictor


def set_champion(name: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, CHAMPION, version)


def describe_version(name: str, version: str, *, description: str, tags: dict[str, str]) -> None:
    """A registered version's description and tags, as the registry UI shows them."""
    client = MlflowClient()
    client.update_model_version(name, version, description=description)
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, v)


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


def log_model(predictor: Predictor, registered_model_name: str) -> str:
    """Log the pyfunc model to the active run and register it; returns the new version."""
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = predictor.save(Path(tmp) / "checkpoint.pt")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=BehaviorPyfunc(),
            artifacts={"checkpoint": str(ckpt)},
            registered_model_name=registered_model_name,
            signature=pyfunc_signature(),
            # Listing requirements skips MLflow's slow inference; the project pins them.
            pip_requirements=[
                "clickstream-propensity",
                "torch==2.13.0",
                "transformers==5.23.0",
                "peft==0.21.2",
            ],  # fmt: skip
        )
    return str(info.registered_model_version)


def log_evaluation(records: list[dict], markdown: str, figures: dict) -> None:
    """The validation table (JSON and markdown) and charts of a training run, as artifacts."""
    mlflow.log_text(markdown, "evaluation/validation_table.md")
    mlflow.log_dict(records, "evaluation/validation_table.json")
    for name, fig in figures.items():
        mlflow.log_figure(fig, f"evaluation/{name}.png")


def log_scoring_run(
    settings: Settings,
    *,
    source: str,
    score_date,
    tags: dict[str, str],
    metrics: dict[str, float],
    report: Path,
) -> str:
    """One MLflow run per (source, score date) in the ``<experiment>-scoring`` experiment, with
    the nightly report as an artifact. A rerun of the date replaces the earlier run (deleted once
    the new one is complete), so the experiment lists each date once."""
    client = MlflowClient()
    exp_id = _experiment(
        settings,
        f"{settings.mlflow_experiment}-scoring",
        "Nightly scoring: one run per source and score date (a rerun replaces it), with the "
        "users scored, mean probabilities, segments, the largest input PSI, the model-health tag "
        "and the nightly report (artifact report/).",
    )
    day = score_date.isoformat()
    earlier = client.search_runs(
        [exp_id], filter_string=f"tags.source = '{source}' and tags.score_date = '{day}'"
    )
    with mlflow.start_run(
        experiment_id=exp_id,
        run_name=f"{source}-{day}",
        tags={"source": source, "score_date": day, **tags},
    ) as run:
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(report), artifact_path="report")
    for r in earlier:
        client.delete_run(r.info.run_id)
    return run.info.run_id
