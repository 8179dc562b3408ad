"""
### clickstream_backfill

Loads a whole date range of a source at once (a year of history, a new source's export) as **one
Spark application per step**, not one run per day.

| task | what it does |
|---|---|
| `ingest_range` | reads the files under `path` that the range owns or needs (below) with the source mapping; cleans, quarantines with reasons, deduplicates; rebuilds the range's event_date partitions; writes `etl_run_summary` per day; returns the range's totals (the task's XCom) |
| `validate_range` | GX gate: every day reconciles (raw = clean + quarantined + duplicate); the events are sound |
| `sessionize_range` | sessions and bot flags for the whole range |
| `validate_sessionized_range` | GX gate on the sessions; emits the `lake_sessionized_events` asset (run_date = to_date) |

Files in day folders (`data/raw/<source>/date=.../`, the daily runs' layout) are read exactly as the
daily runs of the range would read them: each row belongs to its file's arrival day, the folders of
the lateness window on either side are read for late events and duplicates, and the partitions from
`from_date` minus the lateness window are rebuilt; folders of other days are left to their own runs.
So a backfill and the daily runs before and after it never count a row twice. Rows of any other
file (one export, e.g. Online Retail) belong to their event day, and rows without a usable time to
the file's last event day, whatever the range: so an export can be loaded in several ranges, each
row counted by the range holding its day. The rows a range leaves to other ranges are in the
task's totals (`left_to_other_loads`: rows and days) and its log; a range that holds none of an
export's rows fails at once, not retried, naming the export's days, and writes nothing. Rerunning
the same range replaces the same partitions and summary rows.

**Trigger** with params, e.g. for Online Retail: `source=online_retail`,
`path=/path/to/shared/data/online_retail/online_retail.csv.gz`, `from_date=2010-12-01`,
`to_date=2011-12-09`. The same run from a shell: `make load-online-retail`
(`python -m dags.run clickstream_backfill ...`).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from pipeline.assets import DEFAULT_ARGS, SESSIONIZED_EVENTS, SPARK_POOL, source_param
from pipeline.settings import Settings

SETTINGS = Settings.from_env()


def _range(params: dict):
    """(run context for to_date, from_date) of a backfill run."""
    from datetime import date

    from airflow.sdk.exceptions import AirflowFailException

    from pipeline.assets import run_context

    first, last = date.fromisoformat(params["from_date"]), date.fromisoformat(params["to_date"])
    if last < first:
        raise AirflowFailException(f"to_date {last} is before from_date {first}")
    return run_context(params["source"], last), first


@dag(
    dag_id="clickstream_backfill",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # Active once deployed: a backfill or a schedule on a paused DAG would sit queued silently.
    is_paused_upon_creation=False,
    default_args=DEFAULT_ARGS | {"retries": 1},
    tags=["clickstream", "etl", "spark", "backfill"],
    doc_md=__doc__,
    params={
        "source": source_param(SETTINGS.default_source),
        "path": Param(
            "", type="string", description="raw file or folder; empty = data/raw/<source>"
        ),
        "from_date": Param("2026-01-01", type="string", format="date"),
        "to_date": Param("2026-03-01", type="string", format="date"),
    },
)
def clickstream_backfill():
    @task(pool=SPARK_POOL)
    def ingest_range(**context) -> dict:
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowFailException

        from jobs.clean import NothingInRangeError
        from jobs.ingest import run, totals

        ctx, first = _range(context["params"])
        path = Path(context["params"]["path"]) if context["params"]["path"] else ctx.raw_root
        try:
            return totals(run(ctx, path=path, first=first))
        except NothingInRangeError as e:  # a wrong range: retrying cannot help
            raise AirflowFailException(str(e)) from e

    @task
    def validate_range(loaded: dict, **context) -> dict:
        from expectations.validate import validate_clean_events

        ctx, first = _range(context["params"])
        validate_clean_events(ctx, first=first)
        return loaded

    @task(pool=SPARK_POOL)
    def sessionize_range(loaded: dict, **context) -> list[str]:
        from jobs.sessionize import run

        ctx, first = _range(context["params"])
        return run(ctx, first=first)

    @task(outlets=[SESSIONIZED_EVENTS])
    def validate_sessionized_range(partitions: list[str], **context) -> int:
        from expectations.validate import validate_sessionized_events

        ctx, first = _range(context["params"])
        validate_sessionized_events(ctx, first=first)
        context["outlet_events"][SESSIONIZED_EVENTS].extra = {
            "source": ctx.source,
            "run_date": ctx.run_date.isoformat(),
        }
        return len(partitions)

    validate_sessionized_range(sessionize_range(validate_range(ingest_range())))


clickstream_backfill()
