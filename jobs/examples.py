"""Model inputs on Spark: per (user, cutoff) the last N events, the RFM features, the labels and the
profile, as pure ``DataFrame -> DataFrame`` transforms; and the lake's example shards.

    <lake>/examples/cutoff_date=YYYY-MM-DD/*.parquet     one row per eligible user at that cutoff

A row holds what every model family needs and nothing model-specific (no vocabulary ids, no time
buckets: ``behavior_model.data.examples_from_arrow`` turns a shard into model inputs), so training
and scoring read the same shards whichever model reads them:

- ``user_id``, ``cutoff`` (a UTC midnight);
- ``history``: the user's last ``max_events`` events strictly before the cutoff, oldest first, as
  structs of ``EXAMPLE_EVENT_FIELDS``;
- ``n_events``: all the user's events before the cutoff (the history can be longer than N);
- the RFM and activity features ``behavior_model.features.FEATURE_NAMES``, raw (not log-scaled);
- ``purchase`` and ``churn`` labels (1.0 / 0.0), NULL when the shard was built without labels
  (nightly scoring: the future is not known yet).

Definitions equal the pandas reference (``behavior_model.data.build_examples``,
``behavior_model.features.rfm_features``, ``behavior_model.profiles.user_profiles``):
``tests/jobs/test_examples.py`` builds both on the same events and compares every value. Eligible
users have an event in [cutoff - lookback, cutoff); a basket is one (user, event_time) group.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.partitions import write_partitions
from jobs.spark import event_schema
from pipeline.contracts import (
    FEATURE_NAMES,
    FEATURE_WINDOWS_DAYS,
    NEVER_DAYS,
    PROFILE_COLUMNS,
    PROFILE_WINDOWS_DAYS,
)

# The fields of each event in an example's ``history`` list, in sort order (time, then id).
EXAMPLE_EVENT_FIELDS = (
    "event_time",
    "event_id",
    "event_type",
    "item_id",
    "category",
    "item_text",
    "price",
    "quantity",
)
PARTITION_COLUMN = "cutoff_date"


def cutoff_of(score_date: date) -> datetime:
    """The cutoff that scores ``score_date``: the UTC midnight after it."""
    return datetime.combine(score_date + timedelta(days=1), time(0), tzinfo=UTC)


def _ts(cutoff: datetime) -> Column:
    if cutoff.tzinfo is None:
        raise ValueError(f"cutoff {cutoff} has no time zone: cutoffs are UTC midnights")
    return F.lit(cutoff.astimezone(UTC))


def read_sessionized(spark: SparkSession, table: Path, *, end: date) -> DataFrame:
    """Sessionized events with event_date <= ``end``, read with the contract's schema. Hold the
    table's shared lock (``pipeline.lake.table_lock``) until the job that reads them is done."""
    schema = event_schema().add("is_bot", "boolean", False).add("event_date", "date", False)
    if not table.exists():
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(str(table)).filter(F.col("event_date") <= F.lit(end))


def without_bots(events: DataFrame) -> DataFrame:
    """Drop every event of a user flagged as a bot on any day read (training and scoring)."""
    if "is_bot" not in events.columns:
        return events
    bots = events.filter(F.col("is_bot")).select("user_id").distinct()
    return events.join(bots, "user_id", "left_anti")


def at_cutoffs(events: DataFrame, cutoffs: list[datetime], *, horizon_days: int = 0) -> DataFrame:
    """``events`` paired with the cutoffs they matter to (the cutoff in ``cutoff``): each event
    once per cutoff it precedes, and once per cutoff whose next ``horizon_days`` (the label
    period; 0: none) it falls in. One plan and one pass over the events for any number of
    cutoffs, where a plan per cutoff grows with their count."""
    if not cutoffs:
        raise ValueError("at_cutoffs needs at least one cutoff")
    paired = events.withColumn("cutoff", F.explode(F.array(*(_ts(c) for c in cutoffs))))
    end = F.col("cutoff") + F.expr(f"INTERVAL {int(horizon_days)} DAYS")
    return paired.filter(F.col("event_time") < end)


KEYS = ("cutoff", "user_id")


def _past(paired: DataFrame) -> DataFrame:
    """Events strictly before their cutoff with their age in days, purchase amount and flags."""
    t = F.col("cutoff")
    is_buy = F.col("event_type") == "purchase"
    return (
        paired.filter(F.col("event_time") < t)
        # Seconds, then days: the same two roundings as pandas' total_seconds() / 86400, so a
        # value on a decile edge falls on the same side in both (drift compares them).
        .withColumn(
            "_age", (F.unix_micros(t) - F.unix_micros("event_time")) / F.lit(1e6) / F.lit(86400.0)
        )
        .withColumn("_is_buy", is_buy)
        .withColumn("_is_return", F.col("event_type") == "return")
        .withColumn(
            "_amount",
            F.when(
                is_buy,
                F.coalesce(F.col("price"), F.lit(0.0))
                * F.coalesce(F.col("quantity"), F.lit(0)).cast("double"),
            ).otherwise(F.lit(0.0)),
        )
    )


def _last_events(paired: DataFrame, *, max_events: int) -> DataFrame:
    """(cutoff, user_id, history, n_events): the last ``max_events`` events before the cutoff,
    oldest first, and the count of all of them. One hash aggregation, no window sort."""
    everything = F.sort_array(F.collect_list(F.struct(*EXAMPLE_EVENT_FIELDS)))
    # Structs sort by their fields in order: event_time, then event_id.
    return (
        paired.filter(F.col("event_time") < F.col("cutoff"))
        .groupBy(*KEYS)
        .agg(everything.alias("_all"))
        .select(
            *KEYS,
            F.slice(
                "_all", F.greatest(F.size("_all") - F.lit(max_events - 1), F.lit(1)), max_events
            ).alias("history"),
            F.size("_all").cast("long").alias("n_events"),
        )
    )


def last_events(events: DataFrame, cutoff: datetime, *, max_events: int) -> DataFrame:
    """(user_id, history, n_events) at one cutoff (``_last_events``)."""
    return _last_events(at_cutoffs(events, [cutoff]), max_events=max_events).drop("cutoff")


def _rfm_features(paired: DataFrame) -> DataFrame:
    """``cutoff``, ``user_id`` and ``FEATURE_NAMES`` (doubles) per user and cutoff."""
    past = _past(paired)
    per_user = past.groupBy(*KEYS).agg(
        F.min("_age").alias("recency_days"),
        F.max("_age").alias("tenure_days"),
        F.count(F.lit(1)).cast("double").alias("events"),
        F.min(F.when(F.col("_is_buy"), F.col("_age"))).alias("purchase_recency_days"),
        F.sum("_amount").alias("monetary"),
        F.sum(F.col("_is_return").cast("double")).alias("returns"),
        F.countDistinct("item_id").cast("double").alias("distinct_items"),
        *(
            F.sum(F.when(F.col("_age") < w, F.col("_amount"))).alias(f"monetary_{w}d")
            for w in FEATURE_WINDOWS_DAYS
        ),
    )
    baskets = (
        past.groupBy(*KEYS, "event_time")
        .agg(F.first("_age").alias("_age"), F.max(F.col("_is_buy").cast("int")).alias("_buy"))
        .groupBy(*KEYS)
        .agg(
            F.count(F.lit(1)).cast("double").alias("baskets"),
            F.sum("_buy").cast("double").alias("purchase_baskets"),
            *(
                F.sum(F.when(F.col("_age") < w, 1.0)).alias(f"baskets_{w}d")
                for w in FEATURE_WINDOWS_DAYS
            ),
        )
    )
    out = per_user.join(baskets, list(KEYS)).withColumn(
        "mean_gap_days",
        F.when(
            F.col("baskets") > 1,
            (F.col("tenure_days") - F.col("recency_days")) / (F.col("baskets") - 1),
        ),
    )
    never = ("purchase_recency_days", "mean_gap_days")
    return out.select(
        *KEYS,
        *(
            F.coalesce(F.col(n).cast("double"), F.lit(NEVER_DAYS if n in never else 0.0)).alias(n)
            for n in FEATURE_NAMES
        ),
    )


def rfm_features(events: DataFrame, cutoff: datetime) -> DataFrame:
    """``user_id`` and ``FEATURE_NAMES`` (doubles) for every user with an event before the cutoff;
    the pandas reference is ``behavior_model.features.rfm_features``."""
    return _rfm_features(at_cutoffs(events, [cutoff])).drop("cutoff")


def _labels(
    paired: DataFrame, users: DataFrame, *, purchase_days: int, churn_days: int
) -> DataFrame:
    """``users`` (keyed by cutoff and user) with ``purchase`` (a purchase in [T, T +
    purchase_days)) and ``churn`` (no event at all in [T, T + churn_days)) as 1.0 / 0.0."""
    t = F.col("cutoff")
    future = paired.filter(F.col("event_time") >= t)
    p_end = t + F.expr(f"INTERVAL {int(purchase_days)} DAYS")
    c_end = t + F.expr(f"INTERVAL {int(churn_days)} DAYS")
    flags = future.groupBy(*KEYS).agg(
        F.max(
            ((F.col("event_type") == "purchase") & (F.col("event_time") < p_end)).cast("double")
        ).alias("purchase"),
        F.max((F.col("event_time") < c_end).cast("double")).alias("_active"),
    )
    return (
        users.join(flags, list(KEYS), "left")
        .withColumn("purchase", F.coalesce(F.col("purchase"), F.lit(0.0)))
        .withColumn("churn", 1.0 - F.coalesce(F.col("_active"), F.lit(0.0)))
        .drop("_active")
    )


def labels(
    events: DataFrame, users: DataFrame, cutoff: datetime, *, purchase_days: int, churn_days: int
) -> DataFrame:
    """``users`` with ``purchase`` (a purchase in [T, T + purchase_days)) and ``churn`` (no event
    at all in [T, T + churn_days)) as 1.0 / 0.0."""
    paired = at_cutoffs(events, [cutoff], horizon_days=max(purchase_days, churn_days))
    keyed = users.withColumn("cutoff", _ts(cutoff))
    return _labels(paired, keyed, purchase_days=purchase_days, churn_days=churn_days).drop("cutoff")


def _examples(
    events: DataFrame,
    cutoffs: list[datetime],
    *,
    lookback_days: int,
    max_events: int,
    purchase_days: int | None = None,
    churn_days: int | None = None,
) -> DataFrame:
    """The module docstring's rows at every cutoff, from one pass over the events
    (``at_cutoffs``). Labels need both horizons; without them ``purchase`` and ``churn`` are
    NULL."""
    labelled = purchase_days is not None and churn_days is not None
    paired = at_cutoffs(
        events, cutoffs, horizon_days=max(purchase_days, churn_days) if labelled else 0
    )
    # Eligible: an event in [cutoff - lookback, cutoff), i.e. recency_days <= lookback (exact:
    # both sides are whole seconds divided the same way).
    features = _rfm_features(paired).filter(F.col("recency_days") <= float(lookback_days))
    rows = features.join(_last_events(paired, max_events=max_events), list(KEYS))
    if labelled:
        rows = _labels(paired, rows, purchase_days=purchase_days, churn_days=churn_days)
    else:
        rows = rows.withColumn("purchase", F.lit(None).cast("double")).withColumn(
            "churn", F.lit(None).cast("double")
        )
    return rows.withColumn(PARTITION_COLUMN, F.to_date(F.col("cutoff"))).select(
        "user_id", "cutoff", "history", "n_events", *FEATURE_NAMES, "purchase", "churn",
        PARTITION_COLUMN,
    )  # fmt: skip


def build_examples(
    events: DataFrame,
    cutoff: datetime,
    *,
    lookback_days: int,
    max_events: int,
    purchase_days: int | None = None,
    churn_days: int | None = None,
) -> DataFrame:
    """One row per user eligible at ``cutoff``: the module docstring's columns. Labels need both
    horizons; without them ``purchase`` and ``churn`` are NULL."""
    return _examples(
        events, [cutoff], lookback_days=lookback_days, max_events=max_events,
        purchase_days=purchase_days, churn_days=churn_days,
    )  # fmt: skip


def user_profiles(events: DataFrame, cutoff: datetime) -> DataFrame:
    """``user_id`` and ``PROFILE_COLUMNS`` for every user with an event before the cutoff; the
    pandas reference is ``behavior_model.profiles.user_profiles``. NULL where a value does not
    exist (no purchase yet, no category)."""
    past = _past(at_cutoffs(events, [cutoff]))
    per_user = past.groupBy("user_id").agg(
        F.min("_age").alias("recency_days"),
        F.min(F.when(F.col("_is_buy"), F.col("_age"))).alias("purchase_recency_days"),
        F.countDistinct(F.when(F.col("_is_buy"), F.col("event_time"))).alias("orders"),
        F.sum("_amount").alias("monetary"),
        *(
            F.count(F.when(F.col("_age") < w, 1)).alias(f"events_{w}d")
            for w in PROFILE_WINDOWS_DAYS
        ),
        F.max("_age").alias("tenure_days"),
        F.sum(F.col("_is_buy").cast("long")).alias("_buys"),
        F.sum(F.col("_is_return").cast("long")).alias("_returns"),
    )
    by_count = Window.partitionBy("user_id").orderBy(F.col("_n").desc(), F.col("category"))
    favourites = (
        past.filter(F.col("category").isNotNull())
        .groupBy("user_id", "category")
        .agg(F.count(F.lit(1)).alias("_n"))
        .withColumn("_rank", F.row_number().over(by_count))
        .filter(F.col("_rank") <= 3)
        .groupBy("user_id")
        .agg(F.sort_array(F.collect_list(F.struct("_rank", "category"))).alias("_top"))
        .select(
            "user_id",
            F.array_join(F.transform("_top", lambda s: s["category"]), ", ").alias(
                "favourite_categories"
            ),
        )
    )
    moves = F.col("_buys") + F.col("_returns")
    return (
        per_user.join(favourites, "user_id", "left")
        .withColumn(
            "avg_basket_value",
            F.when(F.col("orders") > 0, F.col("monetary") / F.col("orders")),
        )
        .withColumn("return_share", F.when(moves > 0, F.col("_returns") / moves))
        .select("user_id", *PROFILE_COLUMNS)
    )


def training_examples(
    events: DataFrame,
    labelled: list[datetime],
    unlabelled: list[datetime],
    *,
    lookback_days: int,
    max_events: int,
    purchase_days: int,
    churn_days: int,
) -> DataFrame:
    """The rows of a training run: the examples at every ``labelled`` cutoff with labels, and at
    every ``unlabelled`` one (the last day of data: the drift reference) without; two plans of the
    same size whatever the number of cutoffs."""
    common = dict(lookback_days=lookback_days, max_events=max_events)
    parts = []
    if labelled:
        parts.append(
            _examples(
                events, labelled, **common, purchase_days=purchase_days, churn_days=churn_days
            )
        )
    if unlabelled:
        parts.append(_examples(events, unlabelled, **common))
    if not parts:
        raise ValueError("training_examples needs at least one cutoff")
    return parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])


def event_span(events: DataFrame) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The first and the last event time (UTC), or (None, None) without events. (Read as
    microseconds: PySpark would turn timestamps into the Python process's local time.)"""
    first, last = events.agg(
        F.min(F.unix_micros("event_time")), F.max(F.unix_micros("event_time"))
    ).first()
    if first is None:
        return None, None
    return pd.Timestamp(first, unit="us", tz="UTC"), pd.Timestamp(last, unit="us", tz="UTC")


def item_counts(events: DataFrame, before: datetime, *, top: int) -> list[str]:
    """The ``top`` most frequent item ids before ``before``, ties broken by item id (the pandas
    reference: ``behavior_model.data.build_vocabulary``)."""
    rows = (
        events.filter((F.col("event_time") < _ts(before)) & F.col("item_id").isNotNull())
        .groupBy("item_id")
        .count()
        .orderBy(F.col("count").desc(), F.col("item_id"))
        .limit(top)
        .collect()
    )
    return [r["item_id"] for r in rows]


def categories(events: DataFrame, before: datetime) -> list[str]:
    """The distinct categories before ``before``, sorted."""
    rows = (
        events.filter((F.col("event_time") < _ts(before)) & F.col("category").isNotNull())
        .select("category")
        .distinct()
        .collect()
    )
    return sorted(r[0] for r in rows)


def daily_counts(events: DataFrame) -> DataFrame:
    """Events and distinct users per event date (what a training run logs as its input)."""
    return (
        events.groupBy(F.date_format("event_time", "yyyy-MM-dd").alias("event_date"))
        .agg(F.count(F.lit(1)).alias("events"), F.countDistinct("user_id").alias("users"))
        .orderBy("event_date")
    )


def write_examples(examples: DataFrame, table: Path, cutoffs: list[date]) -> list[str]:
    """Replace the shards of ``cutoffs`` (dates of the cutoff midnights) under ``table``."""
    return write_partitions(examples, table, column=PARTITION_COLUMN, dates=cutoffs)
