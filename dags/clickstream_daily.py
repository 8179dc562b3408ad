"""
### clickstream_daily

Turns one day of raw clickstream files into clean, validated, sessionized Parquet.

| task | what it does | output |
|---|---|---|
| `clean_events` | parses the day's raw files with the source mapping, quarantines bad rows with a reason, drops duplicate event ids, rebuilds the event_date partitions late events can touch | `data/lake/<source>/events/`, `quarantine/`, `etl_run_summary` |
| `validate_clean_events` | Great Expectations gate: reconciliation raw = clean + quarantined + duplicate, keys not null, known event types, times in the run window, prices >= 0 | fails the run, naming the expectation and showing offending rows |
| `sessionize_events` | splits each user's events at 30 minutes of inactivity, deterministic session ids | `data/lake/<source>/sessionized_events/` |
| `validate_sessionized_events` | gate: every event has a session, ids unique | emits the `lake_sessionized_events` asset |

**Run date.** A run with logical date D processes the files that *arrived* on D (its data interval
is [D, D+1)). Rerunning D replaces D's outputs; it never duplicates them.
**Backfill.** Trigger with a logical date, or backfill a range from the UI or CLI
(`airflow backfill create --dag-id clickstream_daily --from-date ... --to-date ...`).
**Params.** `source`: the mapping name in `jobs/sources/` (default `sample_clickstream`).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from jobs.airflow_assets import DEFAULT_ARGS, DEFAULT_SOURCE, SESSIONIZED_EVENTS


@dag(
    dag_id="clickstream_daily",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["clickstream", "etl", "spark", "great-expectations"],
    doc_md=__doc__,
    params={"source": Param(DEFAULT_SOURCE, type="string", description="source mapping name")},
)
def clickstream_daily():
    @task
    def clean_events(**context) -> dict:
        from dataclasses import asdict

        from jobs.clean import run

        return asdict(run(context["params"]["source"], context["logical_date"].date()))

    @task
    def validate_clean_events(summary: dict, **context) -> str:
        from expectations.validate import validate_clean_events

        validate_clean_events(context["params"]["source"], context["logical_date"].date())
        return summary["run_date"]

    @task
    def sessionize_events(run_date: str, **context) -> list[str]:
        from jobs.sessionize import run

        return run(context["params"]["source"], context["logical_date"].date())

    @task(outlets=[SESSIONIZED_EVENTS])
    def validate_sessionized_events(partitions: list[str], **context) -> list[str]:
        from expectations.validate import validate_sessionized_events

        source, run_date = context["params"]["source"], context["logical_date"].date()
        validate_sessionized_events(source, run_date)
        context["outlet_events"][SESSIONIZED_EVENTS].extra = {
            "source": source,
            "run_date": run_date.isoformat(),
        }
        return partitions

    validate_sessionized_events(sessionize_events(validate_clean_events(clean_events())))


clickstream_daily()
