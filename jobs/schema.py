"""The canonical event contract, declared once.

Every reader and writer derives its schema from ``EVENT_FIELDS``: Spark jobs use ``EVENT_SCHEMA``,
pandas/pyarrow readers (the model, the validation gate) use ``EVENT_ARROW_SCHEMA``.
"""

from __future__ import annotations

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


def __getattr__(name: str):
    # The Spark schema is built on first use, so pyarrow-only readers (the model, the gates,
    # scoring) never import pyspark.
    if name == "EVENT_SCHEMA":
        from pyspark.sql import types as T

        spark_types = {
            "string": T.StringType(),
            "timestamp": T.TimestampType(),
            "double": T.DoubleType(),
            "bigint": T.LongType(),
        }
        return T.StructType(
            [T.StructField(n, spark_types[t], null) for n, t, _, null, _ in EVENT_FIELDS]
        )
    raise AttributeError(name)


# Lake partitions add event_date (the UTC date of event_time) to the contract.
EVENT_ARROW_SCHEMA = pa.schema(
    [pa.field(n, a, nullable=nullable) for n, _, a, nullable, _ in EVENT_FIELDS]
    + [pa.field("event_date", pa.date32(), nullable=False)]
)
# Sessionized events add the bot flag (set by jobs.sessionize).
SESSIONIZED_ARROW_SCHEMA = EVENT_ARROW_SCHEMA.insert(
    len(EVENT_FIELDS), pa.field("is_bot", pa.bool_(), nullable=False)
)
# Every lake table read without Spark, by folder name.
LAKE_TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "events": EVENT_ARROW_SCHEMA,
    "sessionized_events": SESSIONIZED_ARROW_SCHEMA,
}

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
    "future_event": "event time after the end of the run's window",
    "too_late": "event time before the run's window (older than the lateness allowance)",
}
