"""
### nightly_scoring

Scores every eligible user (at least one event in the source's lookback window) with the source's
champion model (`behavior-model-<source>@champion`, resolved to one version per date) and writes,
for that source and date, in one transaction:

| table | what |
|---|---|
| `user_propensity_scores` | churn and purchase probabilities, model version |
| `user_profiles` | recency, orders, monetary, events 7/30/90 days, tenure, basket, categories, returns |
| `user_embeddings` | the model's user vector and the user's segment |
| `segment_summary` | segment sizes, mean scores and a readable description |
| `user_score_explanations` | the top three drivers of each score, in words, with a signed weight |
| `model_monitoring` | PSI of every input and score against the champion's training reference |
| `model_performance_history` | realised ROC-AUC / calibration once a date's labels have matured |

The per-user work runs on Spark (`SPARK_MASTER`): the example shard
`lake/<source>/examples/cutoff_date=...`, the model pass over it (`mapInArrow`, the champion
broadcast once), and the scored users in `lake/<source>/scores/score_date=...`, from which the
warehouse is loaded. Tasks pass a source and a date, never data.

Then the report `data/reports/<date>/<source>.html` is written and logged to the MLflow
experiment `behavior-model-scoring` (one run per source and date). Rerunning a date replaces that
date's rows and its MLflow run.

**Runs when** `clickstream_daily` or `clickstream_backfill` publishes fresh sessionized events
(the `lake_sessionized_events` asset). **Every** asset event that triggered the run is scored, for
the source and run date it carries (one mapped `score_users` task per (source, date)). Triggered
by hand, it scores `params.score_date` for `params.source`.

**Fails** when a date has no data or no eligible user (the date's existing rows are kept), and in
`model_health` when an input or a score has drifted past the mapping's `monitoring.psi_fail` (0.25; the scores
are written, so the drift can be inspected, and the failed task names the drifting inputs).

**Query it** (DuckDB: `duckdb -readonly data/warehouse.duckdb`; analyst views after
`warehouse init`):
```sql
SELECT user_id, churn_probability, top_churn_reason, segment_description
FROM analytics.latest_user_scores
ORDER BY churn_probability DESC LIMIT 20;
```
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from pipeline.assets import DEFAULT_ARGS, SESSIONIZED_EVENTS, source_param
from pipeline.settings import Settings

SETTINGS = Settings.from_env()


@dag(
    dag_id="nightly_scoring",
    schedule=[SESSIONIZED_EVENTS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # Active once deployed: a backfill or a schedule on a paused DAG would sit queued silently.
    is_paused_upon_creation=False,
    default_args=DEFAULT_ARGS,
    tags=["ml", "scoring", "warehouse"],
    doc_md=__doc__,
    params={
        "source": source_param(SETTINGS.default_source),
        "score_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="YYYY-MM-DD; empty = the dates in the triggering asset events",
        ),
    },
)
def nightly_scoring():
    @task
    def resolve_score_targets(**context) -> list[dict]:
        from pipeline.assets import score_targets

        return score_targets(context)

    @task(map_index_template="{{ target['source'] }} {{ target['score_date'] }}")
    def score_users(target: dict, **context) -> dict:
        from dataclasses import asdict
        from datetime import date

        from behavior_model.score import score_users
        from pipeline.assets import run_context

        ctx = run_context(target["source"], date.fromisoformat(target["score_date"]))
        return asdict(score_users(ctx))

    @task(map_index_template="{{ result['source'] }} {{ result['score_date'] }}")
    def model_health(result: dict) -> str:
        """Fails the run when the scoring run's drift status is ``fail``, naming the inputs."""
        from airflow.sdk.exceptions import AirflowFailException

        where = f"{result['source']} {result['score_date']}"
        if result["drift_status"] == "fail":
            raise AirflowFailException(
                f"{where}: inputs or scores drifted past the fail threshold: "
                f"{', '.join(result['drifting'])}. The scores are written; see model_monitoring, "
                f"analytics.model_health and the report {result['report']}. Retrain the model "
                "(behavior_model_training) or fix the upstream data."
            )
        if result["drift_status"] == "warn":
            print(f"{where}: drift warning: {', '.join(result['drifting'])}")
        return result["drift_status"]

    model_health.expand(result=score_users.expand(target=resolve_score_targets()))


nightly_scoring()
