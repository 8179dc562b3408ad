"""Sessionize clean events: a new session starts after an inactivity gap.

    python -m jobs.sessionize --source sample_clickstream --run-date 2026-01-15

The run for date D rewrites the ``sessionized_events`` partitions the clean run for D rebuilt
([D-L, D]), reading one extra day before them so a session that crosses midnight keeps its id.
``session_id`` is a hash of (user_id, first event time of the session): the same input always gives
the same ids, whichever run computes them.
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.clean import write_event_partitions
from jobs.schema import EVENT_COLUMNS, EVENT_SCHEMA
from jobs.settings import get_settings
from jobs.source_mapping import load_mapping


def sessionize(events: DataFrame, *, idle_gap: timedelta = timedelta(minutes=30)) -> DataFrame:
    """Assign ``session_id``: split each user's events where the gap exceeds ``idle_gap``."""
    by_user = Window.partitionBy("user_id").orderBy("event_time", "event_id")
    gap_s = idle_gap.total_seconds()
    prev = F.lag("event_time").over(by_user)
    starts = events.withColumn(
        "_new",
        F.when(
            prev.isNull()
            | (F.unix_micros("event_time") - F.unix_micros(prev) > F.lit(int(gap_s * 1e6))),
            1,
        ).otherwise(0),
    )
    numbered = starts.withColumn("_n", F.sum("_new").over(by_user))
    first = F.min("event_time").over(Window.partitionBy("user_id", "_n"))
    session_id = F.substring(
        F.sha2(
            F.concat_ws("|", "user_id", F.date_format(first, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")), 256
        ),
        1,
        24,
    )
    return numbered.withColumn("session_id", session_id).drop("_new", "_n")


def read_events(spark: SparkSession, path: Path, *, start: date, end: date) -> DataFrame:
    """Events with event_date in [start, end], read with the canonical schema."""
    schema = EVENT_SCHEMA.add("event_date", "date", False)
    if not path.exists():
        return spark.createDataFrame([], schema)
    return (
        spark.read.schema(schema)
        .parquet(str(path))
        .filter(F.col("event_date").between(F.lit(start), F.lit(end)))
    )


def sessionize_day(
    spark: SparkSession, *, lake: Path, run_date: date, lateness_days: int, idle_gap: timedelta
) -> list[str]:
    first_owned = run_date - timedelta(days=lateness_days)
    events = read_events(
        spark, lake / "events", start=first_owned - timedelta(days=1), end=run_date
    )
    sessions = sessionize(events, idle_gap=idle_gap).select(*EVENT_COLUMNS, "event_date")
    owned = [first_owned + timedelta(days=k) for k in range(lateness_days + 1)]
    return write_event_partitions(sessions, lake / "sessionized_events", dates=owned)


def run(source: str, run_date: date) -> list[str]:
    """Entry point for the DAG task and the CLI; returns the partitions written."""
    from jobs.spark import get_spark

    mapping = load_mapping(source)
    return sessionize_day(
        get_spark(f"sessionize-{mapping.name}"),
        lake=get_settings().source_lake(mapping.name),
        run_date=run_date,
        lateness_days=mapping.lateness_days,
        idle_gap=timedelta(minutes=mapping.session_gap_minutes),
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True)
    p.add_argument("--run-date", type=date.fromisoformat, required=True)
    a = p.parse_args(argv)
    print("wrote partitions:", ", ".join(run(a.source, a.run_date)))


if __name__ == "__main__":
    main()
