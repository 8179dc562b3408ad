"""Sessionize clean events and flag bots.

    python -m jobs.sessionize --source sample_clickstream --run-date 2026-01-15

The run for date D rewrites the ``sessionized_events`` partitions the clean run for D rebuilt
([D-L, D]), reading one extra day before them so a session that crosses midnight keeps its id.
``session_id`` is a hash of (user_id, first event time of the session): the same input always gives
the same ids, whichever run computes them.

Bots: a user with more than ``bot_events_per_minute`` events in any one minute of a day is flagged
(``is_bot``) on that day's events. Flagged users stay in the lake, are left out of training and
scoring, and are counted in ``etl_run_summary``.
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.clean import read_summary, write_partitions, write_summary
from jobs.schema import EVENT_COLUMNS, EVENT_SCHEMA
from jobs.settings import get_settings
from jobs.source_mapping import load_mapping


def sessionize(events: DataFrame, *, idle_gap: timedelta = timedelta(minutes=30)) -> DataFrame:
    """Assign ``session_id``: split each user's events where the gap exceeds ``idle_gap``."""
    by_user = Window.partitionBy("user_id").orderBy("event_time", "event_id")
    prev = F.lag("event_time").over(by_user)
    gap_us = F.unix_micros("event_time") - F.unix_micros(prev)
    new_session = F.when(
        prev.isNull() | (gap_us > F.lit(int(idle_gap.total_seconds() * 1e6))), 1
    ).otherwise(0)
    numbered = events.withColumn("_new", new_session).withColumn("_n", F.sum("_new").over(by_user))
    first = F.min("event_time").over(Window.partitionBy("user_id", "_n"))
    key = F.concat_ws("|", "user_id", F.date_format(first, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"))
    return numbered.withColumn("session_id", F.substring(F.sha2(key, 256), 1, 24)).drop(
        "_new", "_n"
    )


def flag_bots(events: DataFrame, *, max_events_per_minute: int) -> DataFrame:
    """``is_bot``: the user had more than ``max_events_per_minute`` events in one minute that day.

    An aggregate of (user, day, minute) counts joined back, not windows: bots are rare, so the
    joined side is tiny and no full sort is needed.
    """
    day = F.to_date("event_time")
    busy = (
        events.groupBy(
            "user_id", day.alias("_day"), F.date_trunc("minute", "event_time").alias("_minute")
        )
        .count()
        .filter(F.col("count") > max_events_per_minute)
        .select("user_id", "_day")
        .distinct()
        .withColumn("_bot", F.lit(True))
    )
    return (
        events.withColumn("_day", day)
        .join(busy, ["user_id", "_day"], "left")
        .withColumn("is_bot", F.coalesce("_bot", F.lit(False)))
        .drop("_day", "_bot")
    )


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


def sessionize_range(
    spark: SparkSession,
    *,
    lake: Path,
    first: date,
    last: date,
    idle_gap: timedelta,
    bot_events_per_minute: int,
) -> dict[str, tuple[int, int]]:
    """Rewrite sessionized partitions [first, last]; returns {event_date: (bot_users, bot_events)}."""
    events = read_events(spark, lake / "events", start=first - timedelta(days=1), end=last)
    flagged = flag_bots(
        sessionize(events, idle_gap=idle_gap), max_events_per_minute=bot_events_per_minute
    )
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    out = lake / "sessionized_events"
    write_partitions(
        flagged.select(*EVENT_COLUMNS, "is_bot", "event_date"), out, column="event_date", dates=days
    )
    # Counted from what was written (three columns of Parquet), not by caching the wide rows.
    bots = (
        spark.read.parquet(str(out))
        .filter(F.col("is_bot") & F.col("event_date").between(F.lit(first), F.lit(last)))
        .groupBy("event_date")
        .agg(F.countDistinct("user_id").alias("users"), F.count("*").alias("events"))
        .collect()
    )
    counts = {d.isoformat(): (0, 0) for d in days}
    counts.update({r["event_date"].isoformat(): (r["users"], r["events"]) for r in bots})
    return counts


def record_bots(lake: Path, source: str, counts: dict[str, tuple[int, int]]) -> list:
    """Add bot counts to the run summaries of the dates that have one (JSON and warehouse)."""
    from jobs.warehouse import write_run_summaries

    updated = []
    for day, (users, events) in counts.items():
        try:
            s = read_summary(lake, day)
        except FileNotFoundError:
            continue
        s.bot_users, s.bot_events = users, events
        write_summary(s, lake)
        updated.append(s)
    if updated:
        write_run_summaries(updated)
    return updated


def run(source: str, run_date: date, *, first: date | None = None) -> list[str]:
    """Entry point for the DAG task and the CLI; returns the partitions written.

    Daily runs rewrite [run_date - lateness, run_date]; a historical load passes ``first``.
    """
    from jobs.spark import get_spark

    mapping = load_mapping(source)
    lake = get_settings().source_lake(mapping.name)
    daily = first is None
    first = first or run_date - timedelta(days=mapping.lateness_days)
    counts = sessionize_range(
        get_spark(f"sessionize-{mapping.name}"),
        lake=lake,
        first=first,
        last=run_date,
        idle_gap=timedelta(minutes=mapping.session_gap_minutes),
        bot_events_per_minute=mapping.bot_events_per_minute,
    )
    # The daily run for D owns D's summary; a historical load owns every day of its range.
    owned = {run_date.isoformat(): counts[run_date.isoformat()]} if daily else counts
    record_bots(lake, mapping.name, owned)
    return sorted(counts)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True)
    p.add_argument("--run-date", type=date.fromisoformat, required=True)
    a = p.parse_args(argv)
    print("wrote partitions:", ", ".join(run(a.source, a.run_date)))


if __name__ == "__main__":
    main()
