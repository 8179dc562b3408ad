"""Assets and defaults shared by the DAGs. Imports nothing heavy: parsed on every DAG-file scan."""

from __future__ import annotations

from datetime import date, timedelta

from airflow.sdk import Asset

# Emitted by clickstream_daily (and clickstream_backfill) when a day's sessionized events are in
# the lake; extra carries {"source", "run_date"}. nightly_scoring runs on it.
SESSIONIZED_EVENTS = Asset(name="lake_sessionized_events", uri="file:///lake/sessionized_events")

# Spark tasks take a slot of this pool (created by ``dags.run.migrate_airflow_db`` and the
# compose stack's airflow-init): a backfill of many days runs its Spark work a few at a time.
SPARK_POOL = "spark"

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
}


def source_param(default: str):
    """The ``source`` Param every DAG takes: one of the shipped mappings, so a typo is refused
    in the trigger form instead of failing a task."""
    from airflow.sdk import Param

    from pipeline.source_mapping import packaged_sources

    return Param(default, enum=packaged_sources(), description="source mapping (pipeline/sources/)")


def run_date_param():
    """Optional ``run_date`` Param: a manual trigger may name the day instead of a logical date."""
    from airflow.sdk import Param

    return Param(
        None, type=["null", "string"], format="date", description="YYYY-MM-DD; empty = logical date"
    )


def run_date_of(context) -> date:
    """The date a run processes: ``params.run_date`` if given, else the run's logical date.

    A manual trigger without a logical date and without ``run_date`` fails at once, saying so.
    """
    from airflow.sdk.exceptions import AirflowFailException

    given = (context.get("params") or {}).get("run_date")
    if given:
        return date.fromisoformat(given)
    logical = context.get("logical_date")
    if logical is not None:
        return logical.date()
    raise AirflowFailException(
        "no date to process: trigger with a logical date or set params.run_date (YYYY-MM-DD)"
    )


def run_context(source: str, run_date: date):
    """The run context of a DAG task; a configuration error fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipeline.context import RunContext
    from pipeline.source_mapping import UnknownSourceError

    try:
        return RunContext.create(source, run_date)
    except (UnknownSourceError, ValueError) as e:
        raise AirflowFailException(f"configuration error, not retried: {e}") from e


def score_targets(context) -> list[dict]:
    """Every (source, score date) a scoring run must score, oldest first, without repeats.

    ``params.score_date`` (a manual trigger) wins; otherwise every triggering asset event counts,
    with the source it carries, not only the latest one.
    """
    from airflow.sdk.exceptions import AirflowFailException

    params = context.get("params") or {}
    if params.get("score_date"):
        return [
            {
                "source": params["source"],
                "score_date": date.fromisoformat(params["score_date"]).isoformat(),
            }
        ]
    events = context.get("triggering_asset_events") or {}
    targets = {
        (e.extra.get("source", params.get("source")), e.extra["run_date"])
        for evs in events.values()
        for e in evs
        if "run_date" in (e.extra or {})
    }
    if not targets:
        raise AirflowFailException(
            "nothing to score: set params.score_date, or let a lake_sessionized_events asset "
            "event (with source and run_date) trigger the run"
        )
    return [{"source": s, "score_date": d} for s, d in sorted(targets, key=lambda t: (t[1], t[0]))]
