"""Sessionize clean events and flag bots.

    python -m jobs.sessionize --source sample_clickstream --run-date 2026-01-15

The run for date D rewrites the ``sessionized_events`` partitions the clean run for D rebuilt
([D-L, D]), reading one extra day before them so a session that crosses midnight keeps its id.
``session_id`` is a hash of (user_id, first event time of the session): the same input always gives
the same ids, whichever run computes them.

Bots: a user with more than ``bot_events_per_minute`` events in any one minute of a day is flagged
(``is_bot``) on that day's events. Flagged users stay in the lake, are left out of training and
scoring, and are counted per event date in the warehouse table ``etl_bot_activity``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.partitions import stage_partitions, swap_partitions
from jobs.spark import event_schema
from pipeline.context import RunContext
from pipeline.contracts import EVENT_COLUMNS, BotActivity
from pipeline.lake import Lake, table_lock
from pipeline.run_summaries import record_bot_activity

log = logging.getLogger(__name__)


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


def read_events(spark: SparkSession, lake: Lake, *, start: date, end: date) -> DataFrame:
    """Clean events with event_date in [start, end], read with the contract's schema."""
    schema = event_schema(with_event_date=True)
    if not lake.events.exists():
        return spark.createDataFrame([], schema)
    return (
        spark.read.schema(schema)
        .parquet(str(lake.events))
        .filter(F.col("event_date").between(F.lit(start), F.lit(end)))
    )


def sessionize_range(
    spark: SparkSession,
    *,
    lake: Lake,
    source: str,
    first: date,
    last: date,
    idle_gap: timedelta,
    bot_events_per_minute: int,
) -> tuple[list[str], list[BotActivity]]:
    """Rewrite sessionized partitions [first, last]; returns (dates written, bot activity per date).

    Reads one day before ``first`` so a session crossing midnight keeps its id. The clean events
    are read under the events table's shared lock (no concurrent run swaps them meanwhile).
    """
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    staging = None
    try:
        with table_lock(lake.events, shared=True):
            events = read_events(spark, lake, start=first - timedelta(days=1), end=last)
            flagged = flag_bots(
                sessionize(events, idle_gap=idle_gap), max_events_per_minute=bot_events_per_minute
            )
            staging, produced = stage_partitions(
                flagged.select(*EVENT_COLUMNS, "is_bot", "event_date"),
                lake.sessionized_events,
                column="event_date",
                dates=days,
            )
        # Counted from what this run staged (three columns of Parquet), not by caching wide rows.
        bots = (
            {
                r["event_date"].isoformat(): r
                for r in spark.read.parquet(str(staging))
                .filter(F.col("is_bot"))
                .groupBy("event_date")
                .agg(F.countDistinct("user_id").alias("users"), F.count("*").alias("events"))
                .collect()
            }
            if produced
            else {}
        )
        swap_partitions(lake.sessionized_events, column="event_date", dates=days, produced=produced)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    activity = []
    for d in (day.isoformat() for day in days):
        users, events_ = (bots[d]["users"], bots[d]["events"]) if d in bots else (0, 0)
        activity.append(BotActivity(source, d, users, events_))
    return sorted(produced), activity


def run(ctx: RunContext, *, first: date | None = None) -> list[str]:
    """Entry point for the DAG task and the CLI; returns the partitions written.

    A run of the days [first, run_date] (a historical load passes ``first``; a daily run is
    the one day) rewrites [first - lateness, run_date]: the partitions its clean step rebuilt.
    """
    from jobs.spark import get_spark

    mapping = ctx.mapping
    first = (first or ctx.run_date) - timedelta(days=mapping.lateness_days)
    written, activity = sessionize_range(
        get_spark(ctx.settings, f"sessionize-{mapping.name}"),
        lake=ctx.lake,
        source=mapping.name,
        first=first,
        last=ctx.run_date,
        idle_gap=timedelta(minutes=mapping.session_gap_minutes),
        bot_events_per_minute=mapping.bot_events_per_minute,
    )
    record_bot_activity(activity, warehouse=ctx.warehouse)
    bots = sum(a.bot_users for a in activity)
    log.info(
        "%s: sessionized %s..%s (%d partitions with rows), %d bot user-days flagged",
        mapping.name, first, ctx.run_date, len(written), bots,
    )  # fmt: skip
    return written


def main(argv: list[str] | None = None) -> None:
    from pipeline.settings import apply_process_env

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True)
    p.add_argument("--run-date", type=date.fromisoformat, required=True)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    ctx = RunContext.create(a.source, a.run_date, settings=apply_process_env())
    print("wrote partitions:", ", ".join(run(ctx)))


if __name__ == "__main__":
    main()
