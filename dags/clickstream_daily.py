"""
### clickstream_daily

Turns one day of raw clickstream files into clean, validated, sessionized Parquet.

| task | what it does | output |
|---|---|---|
| `wait_for_export` | sensor (reschedule mode, every 10 min, up to 12 h): waits for the day's raw files to arrive | the files found |
| `clean_events` | parses the day's raw files with the source mapping, quarantines bad rows with a reason, drops duplicate event ids, rebuilds the event_date partitions late events can touch | `data/lake/<source>/events/`, `quarantine/`, `etl_run_summary` |
| `validate_clean_events` | Great Expectations gate: reconciliation raw = clean + quarantined + duplicate, keys not null, known event types, times in the run window, prices >= 0 | fails the run, naming the expectation and showing offending rows |
| `sessionize_events` | splits each user's events at the mapping's inactivity gap, deterministic session ids, bot flags | `data/lake/<source>/sessionized_events/`, `etl_bot_activity` |
| `validate_sessionized_events` | gate: every event has a session, ids unique | emits the `lake_sessionized_events` asset (source, run_date) |

**Run date.** A run with logical date D processes the files that *arrived* on D (its data interval
is [D, D+1)); `params.run_date` overrides it for a manual trigger. Rerunning D replaces D's outputs;
it never duplicates them. Runs for neighbouring days may run at once: partitions are staged and
swapped in under a lock, so the lake equals the one of a serial run.
Spark tasks take a slot of the `spark` pool (created by `make demo` / `airflow-init`), so a
backfill of many days does not start many Spark applications at once.
**Params.** `source`: a mapping in `pipeline/sources/`. A wrong source fails at once, without retries.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, PokeReturnValue, dag, task

from pipeline.assets import (
    DEFAULT_ARGS,
    SESSIONIZED_EVENTS,
    SPARK_POOL,
    run_context,
    run_date_of,
    run_date_param,
    source_param,
)
from pipeline.settings import Settings

SETTINGS = Settings.from_env()


@dag(
    dag_id="clickstream_daily",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # Active once deployed: a backfill or a schedule on a paused DAG would sit queued silently.
    is_paused_upon_creation=False,
    default_args=DEFAULT_ARGS,
    tags=["clickstream", "etl", "spark", "great-expectations"],
    doc_md=__doc__,
    params={
        "source": source_param(SETTINGS.default_source),
        "run_date": run_date_param(),
    },
)
def clickstream_daily():
    @task.sensor(poke_interval=600, timeout=12 * 3600, mode="reschedule")
    def wait_for_export(**context) -> PokeReturnValue:
        from jobs.raw_files import day_files

        ctx = run_context(context["params"]["source"], run_date_of(context))
        files = day_files(ctx.raw_root, ctx.mapping, ctx.run_date)
        return PokeReturnValue(is_done=bool(files), xcom_value=[str(f) for f in files])

    @task(pool=SPARK_POOL)
    def clean_events(files: list[str], **context) -> dict:
        from dataclasses import asdict

        from jobs.clean import run

        summary = run(run_context(context["params"]["source"], run_date_of(context)))
        return asdict(summary)

    @task
    def validate_clean_events(summary: dict, **context) -> str:
        from expectations.validate import validate_clean_events

        validate_clean_events(run_context(context["params"]["source"], run_date_of(context)))
        return summary["run_date"]

    @task(pool=SPARK_POOL)
    def sessionize_events(run_date: str, **context) -> list[str]:
        from jobs.sessionize import run

        return run(run_context(context["params"]["source"], run_date_of(context)))

    @task(outlets=[SESSIONIZED_EVENTS])
    def validate_sessionized_events(partitions: list[str], **context) -> list[str]:
        from expectations.validate import validate_sessionized_events

        ctx = run_context(context["params"]["source"], run_date_of(context))
        validate_sessionized_events(ctx)
        context["outlet_events"][SESSIONIZED_EVENTS].extra = {
            "source": ctx.source,
            "run_date": ctx.run_date.isoformat(),
        }
        return partitions

    validate_sessionized_events(
        sessionize_events(validate_clean_events(clean_events(wait_for_export())))
    )


clickstream_daily()
