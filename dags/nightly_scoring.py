"""
### nightly_scoring

Scores every eligible user (at least one event in the source's lookback window) with the source's
champion model (`behavior-model-<source>@champion`, resolved to one version per date) and writes
`user_propensity_scores` (score_date, user_id, churn_probability, purchase_probability,
model_name, model_version, scored_at) in the warehouse. Rerunning a date replaces that date's rows
in one transaction.

**Runs when** `clickstream_daily` or `clickstream_backfill` publishes fresh sessionized events
(the `lake_sessionized_events` asset). **Every** asset event that triggered the run is scored, for
the source and run date it carries: a backfill of N days yields N scored dates (one mapped
`score_users` task per (source, date)). Triggered by hand, it scores `params.score_date` for
`params.source`.

A date without data or without eligible users **fails** with the cause and keeps that date's
existing rows; it never replaces them with nothing.

**Query it** (DuckDB: `duckdb data/warehouse.duckdb`):
```sql
SELECT user_id, churn_probability, purchase_probability
FROM user_propensity_scores
WHERE score_date = (SELECT max(score_date) FROM user_propensity_scores)
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

    score_users.expand(target=resolve_score_targets())


nightly_scoring()
