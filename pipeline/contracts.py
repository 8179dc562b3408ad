"""The data contracts, declared once: events, lake tables, quarantine rows, run summaries.

Every reader and writer derives its schema from here: Spark jobs build their ``StructType`` from
``EVENT_FIELDS`` (``jobs.spark.spark_schema``), pandas/pyarrow readers (the model, the gates,
scoring) use the arrow schemas, the MLflow signature uses the field list. No pyspark here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

EVENT_TYPES: tuple[str, ...] = ("view", "cart", "wishlist", "purchase", "return")

# (name, Spark SQL type, arrow type, nullable, meaning)
EVENT_FIELDS: tuple[tuple[str, str, pa.DataType, bool, str], ...] = (
    ("event_id", "string", pa.string(), False, "source id, or a hash of the mapped row"),
    ("user_id", "string", pa.string(), False, "the customer"),
    ("event_time", "timestamp", pa.timestamp("us", tz="UTC"), False, "when it happened, UTC"),
    ("event_type", "string", pa.string(), False, "one of EVENT_TYPES"),
    ("item_id", "string", pa.string(), False, "product id"),
    ("category", "string", pa.string(), True, "product category"),
    ("item_text", "string", pa.string(), True, "product description, embedded by the model"),
    ("price", "double", pa.float64(), True, "unit price, >= 0"),
    ("quantity", "bigint", pa.int64(), True, "units (positive; returns keep the sign +)"),
    ("session_id", "string", pa.string(), True, "set by the sessionize job"),
)

EVENT_COLUMNS: tuple[str, ...] = tuple(f[0] for f in EVENT_FIELDS)


# Lake partitions add event_date (the UTC date of event_time) to the contract.
EVENT_ARROW_SCHEMA = pa.schema(
    [pa.field(n, a, nullable=nullable) for n, _, a, nullable, _ in EVENT_FIELDS]
    + [pa.field("event_date", pa.date32(), nullable=False)]
)
# Sessionized events add the bot flag (set by jobs.sessionize).
SESSIONIZED_ARROW_SCHEMA = EVENT_ARROW_SCHEMA.insert(
    len(EVENT_FIELDS), pa.field("is_bot", pa.bool_(), nullable=False)
)
# Quarantined raw rows: where each came from, the line (personal values masked) and why.
QUARANTINE_ARROW_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line_number", pa.int64(), nullable=False),
        pa.field("raw_line", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("ingest_date", pa.date32(), nullable=False),
    ]
)
# Every lake table, by folder name, with the column it is partitioned by.
LAKE_TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "events": EVENT_ARROW_SCHEMA,
    "sessionized_events": SESSIONIZED_ARROW_SCHEMA,
    "quarantine": QUARANTINE_ARROW_SCHEMA,
}
LAKE_PARTITION_COLUMN: dict[str, str] = {
    "events": "event_date",
    "sessionized_events": "event_date",
    "quarantine": "ingest_date",
}

# Per (user, cutoff) features, computed from events strictly before the cutoff by the pandas
# reference (behavior_model.features, behavior_model.profiles) and on Spark (jobs.examples).
# RFM and activity windows: the baselines' features and the behaviour model's context, in order.
FEATURE_WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90, 180, 365)
FEATURE_NAMES: tuple[str, ...] = (
    "recency_days",
    "tenure_days",
    "events",
    "baskets",
    "purchase_recency_days",
    "purchase_baskets",
    "monetary",
    "returns",
    "distinct_items",
    *(name for w in FEATURE_WINDOWS_DAYS for name in (f"baskets_{w}d", f"monetary_{w}d")),
    "mean_gap_days",
)
# Stands for "never" in purchase_recency_days and mean_gap_days (longer than any lookback).
NEVER_DAYS = 400.0
# The user_profiles columns (pipeline.tables.USER_PROFILES): who a user is, in plain counts.
PROFILE_COLUMNS: tuple[str, ...] = (
    "recency_days",
    "purchase_recency_days",
    "orders",
    "monetary",
    "events_7d",
    "events_30d",
    "events_90d",
    "tenure_days",
    "avg_basket_value",
    "favourite_categories",
    "return_share",
)
PROFILE_WINDOWS_DAYS: tuple[int, ...] = (7, 30, 90)

# Reason codes, documented once. A row gets the first reason that applies, in this order.
QUARANTINE_REASONS: dict[str, str] = {
    "bad_encoding": "the line is not valid UTF-8",
    "header_line": "a repeated CSV header line inside the file",
    "malformed": "the line cannot be parsed in the source format (bad JSON, wrong column count, empty)",
    "nested_value": "an object or array where a scalar value is expected",
    "missing_user_id": "no user id",
    "missing_event_id": "the source maps an event id column but the row has none",
    "missing_item_id": "no item id",
    "bad_timestamp": "the time is missing or matches none of the mapping's formats",
    "unknown_event_type": "the event name is not in the mapping's event_types",
    "bad_number": "price or quantity is not a finite number (text, NaN, Infinity)",
    "negative_price": "price below zero",
    "future_event": "event time after the end of the day its file arrived (a file in a day folder)",
    "too_late": "event time more than lateness_days before the day its file arrived",
}


@dataclass
class RunSummary:
    """Row accounting for the raw rows one run date owns: raw = clean + quarantined + duplicate.

    Written once per run by ``pipeline.run_summaries.record_run_summaries`` (JSON beside the lake
    and the warehouse tables ``etl_run_summary`` / ``etl_quarantine_counts``, one transaction).
    """

    source: str
    run_date: str
    raw_rows: int
    clean_rows: int
    quarantined_rows: int
    duplicate_rows: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    partitions_written: list[str] = field(default_factory=list)
    raw_files: list[str] = field(default_factory=list)

    @property
    def unaccounted_rows(self) -> int:
        return self.raw_rows - self.clean_rows - self.quarantined_rows - self.duplicate_rows


@dataclass(frozen=True)
class BotActivity:
    """Users flagged as bots on one event date (written by the sessionize job)."""

    source: str
    event_date: str
    bot_users: int
    bot_events: int
