"""
### nightly_scoring

Scores every eligible user (at least one event in the lookback window) with the model that holds
the `behavior-model@champion` alias and writes `user_propensity_scores`
(score_date, user_id, churn_probability, purchase_probability, model_name, model_version,
scored_at) in the warehouse. Rerunning a date replaces that date's rows in one transaction.

**Runs when** `clickstream_daily` publishes fresh sessionized events (the
`lake_sessionized_events` asset); the score date is the `run_date` in that asset event. Triggered
by hand, it scores `params.score_date`.

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

from jobs.airflow_assets import DEFAULT_ARGS, DEFAULT_SOURCE, SESSIONIZED_EVENTS


@dag(
    dag_id="nightly_scoring",
    schedule=[SESSIONIZED_EVENTS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["ml", "scoring", "warehouse"],
    doc_md=__doc__,
    params={
        "source": Param(DEFAULT_SOURCE, type="string", description="source mapping name"),
        "score_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="YYYY-MM-DD; empty = from the asset event",
        ),
    },
)
def nightly_scoring():
    @task
    def resolve_score_date(**context) -> str:
        from datetime import date

        from airflow.sdk.exceptions import AirflowFailException

        if context["params"].get("score_date"):
            return date.fromisoformat(context["params"]["score_date"]).isoformat()
        events = context.get("triggering_asset_events") or {}
        dates = [
            e.extra["run_date"] for evs in events.values() for e in evs if "run_date" in e.extra
        ]
        if dates:
            return max(dates)
        if context.get("logical_date") is not None:
            return context["logical_date"].date().isoformat()
        raise AirflowFailException("no score_date: set params.score_date or trigger from the asset")

    @task
    def score_users(score_date: str, **context) -> int:
        from datetime import date

        from behavior_model.score import score_users

        return score_users(context["params"]["source"], date.fromisoformat(score_date))

    score_users(resolve_score_date())


nightly_scoring()
