"""
### behavior_model_training

Trains the behaviour sequence model on the sessionized events up to the logical date and logs the
run to MLflow (params, per-epoch losses, validation ROC-AUC / PR-AUC / log loss for churn and
purchase, the model with its vocabulary and configs).

Each source has its own registered model, `behavior-model-<source>`, and its own `champion`; the
label horizons and lookback come from the source mapping's `labels` block. The alias moves to the
new version only if its mean validation ROC-AUC is at least the current champion's (and
LightGBM's) on the same validation users and labels (the first version always becomes champion).
The decision and its numbers are in the run's `promotion.json` artifact and its `promoted` tag.

**Where the data goes.** Spark writes each training and validation cutoff's examples (last N
events, RFM features, labels) to `lake/<source>/training_examples/cutoff_date=...`; the trainer
streams those shards, so the model's memory is the shuffle buffer, not the users. The task holds a
shared lock on the sessionized events while it builds them (a backfill rewriting a day waits).

**Logical date D**: training uses events up to and including day D; the validation cutoff is the
latest midnight whose labels are complete by then. Weekly by default; trigger it after a backfill.
**Model families.** `families` lists what the run fits on the same shards: `event_transformer`
(the CPU default), `pretrained_lm` (a pretrained LM read as text, LoRA fine-tuned: give it a
GPU) and `hybrid` (LightGBM on the RFM features and the outputs of event transformers cross-fitted
over user folds: `hybrid_folds` transformer fits, each without one fold's users; its reasons are
the stack's TreeSHAP contributions). List them simplest first: a later family replaces the
choice only when its lead in mean validation ROC-AUC is beyond the noise of the validation users
(the lower end of its paired bootstrap 95% interval above `family_margin`). The choice is the
candidate the gate weighs; the version's `model_family` tag and `promotion.json` say which, with
every family's validation ROC-AUC and lead. Nightly scoring serves whichever family holds `champion`.
**Params.** `source` (mapping name), `device` (`auto`: CUDA with bf16 when present, else CPU),
`families`, `family_margin`; the event transformer's inputs: `token_unit` (`basket` = one position per basket or
session, its items pooled), `max_events`, `basket_gap_minutes`, `contrastive_weight`.
Compare runs with `mlflow ui --backend-store-uri sqlite:///data/mlflow/mlflow.db`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from pipeline.assets import DEFAULT_ARGS, run_context, run_date_of, run_date_param, source_param
from pipeline.settings import Settings

SETTINGS = Settings.from_env()


@dag(
    dag_id="behavior_model_training",
    schedule=CronDataIntervalTimetable("@weekly", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # Active once deployed: a backfill or a schedule on a paused DAG would sit queued silently.
    is_paused_upon_creation=False,
    default_args=DEFAULT_ARGS | {"retries": 1},
    tags=["ml", "training", "mlflow"],
    doc_md=__doc__,
    params={
        "source": source_param(SETTINGS.default_source),
        "run_date": run_date_param(),
        "device": Param("auto", enum=["auto", "cpu", "cuda"], description="training device"),
        "families": Param(
            ["event_transformer"],
            type="array",
            items={"type": "string", "enum": ["event_transformer", "pretrained_lm", "hybrid"]},
            minItems=1,
            description="model families to fit, simplest first; a later one is registered "
            "when its validation lead is beyond the noise and family_margin",
        ),
        "family_margin": Param(
            0.0,
            type="number",
            minimum=0,
            description="mean validation ROC-AUC a later family must lead by, the lower end of "
            "its paired bootstrap 95% interval above it",
        ),
        "token_unit": Param(
            "event",
            enum=["event", "basket"],
            description="the event transformer's positions: one per event, or one per basket "
            "(events at most basket_gap_minutes apart; raise max_events with it)",
        ),
        "max_events": Param(64, type="integer", minimum=1, description="events read per user"),
        "basket_gap_minutes": Param(
            0,
            type="number",
            minimum=0,
            description="0 = events at one timestamp (an invoice); 30 = a session",
        ),
        "contrastive_weight": Param(
            0,
            type="number",
            minimum=0,
            description="contrastive pre-training beside next-event prediction (0 = off)",
        ),
    },  # fmt: skip
)
def behavior_model_training():
    @task
    def train_behavior_model(**context) -> dict:
        from behavior_model.train import config_from_params, run_training

        params = context["params"]
        ctx = run_context(params["source"], run_date_of(context))
        result = run_training(ctx, config_from_params(dict(params)))
        return {k: v for k, v in result.items() if k != "decision"}

    train_behavior_model()


behavior_model_training()
