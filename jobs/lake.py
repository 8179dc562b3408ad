"""Reading lake tables without Spark (the model, the gates and scoring use pyarrow)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from jobs.schema import LAKE_TABLE_SCHEMAS


def read_partitions(
    path: Path, *, start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """Events with event_date in [start, end] from a lake table, with the contract's schema.

    ``sessionized_events`` also carry ``is_bot``.
    """
    if path.name not in LAKE_TABLE_SCHEMAS:
        raise ValueError(f"{path}: not a lake table; known: {sorted(LAKE_TABLE_SCHEMAS)}")
    schema = LAKE_TABLE_SCHEMAS[path.name]
    if not path.exists():
        return schema.empty_table().to_pandas()
    dataset = ds.dataset(path, schema=schema, format="parquet", partitioning="hive")
    flt = None
    if start is not None:
        flt = ds.field("event_date") >= start
    if end is not None:
        upper = ds.field("event_date") <= end
        flt = upper if flt is None else flt & upper
    return dataset.to_table(filter=flt).to_pandas()


def without_bots(events: pd.DataFrame) -> pd.DataFrame:
    """Drop every event of a user flagged as a bot on any day read (training and scoring)."""
    if "is_bot" not in events.columns:
        return events
    bots = events.loc[events["is_bot"], "user_id"].unique()
    return events[~events["user_id"].isin(bots)]
