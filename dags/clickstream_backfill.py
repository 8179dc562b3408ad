"""
### clickstream_backfill

Loads a whole date range of a source at once (a year of history, a new source's export) as **one
Spark application per step**, not one run per day.

| task | what it does |
|---|---|
| `ingest_range` | reads every file under `path` with the source mapping; cleans, quarantines with reasons, deduplicates; rebuilds every event_date partition in [from_date, to_date]; writes `etl_run_summary` per day |
| `validate_range` | GX gate: every day reconciles (raw = clean + quarantined + duplicate); the events are sound |
| `sessionize_range` | sessions and bot flags for the whole range |
| `validate_sessionized_range` | GX gate on the sessions; emits the `lake_sessionized_events` asset (run_date = to_date) |

Each raw row is owned by its event day (rows without a usable time by `to_date`). Rerunning the same
range replaces the same partitions and summary rows.

**Trigger** with params, e.g. for Online Retail: `source=online_retail`,
`path=/path/to/shared/data/online_retail/online_retail.csv.gz`, `from_date=2010-12-01`,
`to_date=2011-12-09`. The same load from a shell: `make load-online-retail`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from jobs.airflow_assets import DEFAULT_ARGS, DEFAULT_SOURCE, SESSIONIZED_EVENTS


@dag(
    dag_id="clickstream_backfill",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS | {"retries": 1},
    tags=["clickstream", "etl", "spark", "backfill"],
    doc_md=__doc__,
    params={
        "source": Param(DEFAULT_SOURCE, type="string", description="source mapping name or file"),
        "path": Param(
            "", type="string", description="raw file or folder; empty = data/raw/<source>"
        ),
        "from_date": Param("2026-01-01", type="string", format="date"),
        "to_date": Param("2026-03-01", type="string", format="date"),
    },
)
def clickstream_backfill():
    @task
    def ingest_range(**context) -> dict:
        from datetime import date
        from pathlib import Path

        from jobs.ingest import run
        from jobs.settings import get_settings
        from jobs.source_mapping import load_mapping

        p = context["params"]
        path = (
            Path(p["path"])
            if p["path"]
            else get_settings().raw_dir / load_mapping(p["source"]).name
        )
        summaries = run(
            p["source"], path, date.fromisoformat(p["from_date"]), date.fromisoformat(p["to_date"])
        )
        return {"days": len(summaries), "raw_rows": sum(s.raw_rows for s in summaries)}

    @task
    def validate_range(loaded: dict, **context) -> dict:
        from datetime import date

        from expectations.validate import validate_clean_events

        p = context["params"]
        first, last = date.fromisoformat(p["from_date"]), date.fromisoformat(p["to_date"])
        validate_clean_events(p["source"], last, first=first)
        return loaded

    @task
    def sessionize_range(loaded: dict, **context) -> list[str]:
        from datetime import date

        from jobs.sessionize import run

        p = context["params"]
        return run(
            p["source"], date.fromisoformat(p["to_date"]), first=date.fromisoformat(p["from_date"])
        )

    @task(outlets=[SESSIONIZED_EVENTS])
    def validate_sessionized_range(partitions: list[str], **context) -> int:
        from datetime import date

        from expectations.validate import validate_sessionized_events

        p = context["params"]
        validate_sessionized_events(
            p["source"], date.fromisoformat(p["to_date"]), first=date.fromisoformat(p["from_date"])
        )
        context["outlet_events"][SESSIONIZED_EVENTS].extra = {
            "source": p["source"],
            "run_date": p["to_date"],
        }
        return len(partitions)

    validate_sessionized_range(sessionize_range(validate_range(ingest_range())))


clickstream_backfill()
