"""Reading lake tables without Spark (the model, the gates and scoring use pyarrow)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from jobs.schema import EVENT_ARROW_SCHEMA


def read_partitions(
    path: Path, *, start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """Events with event_date in [start, end] from a lake table, with the contract's schema."""
    if not path.exists():
        return EVENT_ARROW_SCHEMA.empty_table().to_pandas()
    dataset = ds.dataset(path, schema=EVENT_ARROW_SCHEMA, format="parquet", partitioning="hive")
    flt = None
    if start is not None:
        flt = ds.field("event_date") >= start
    if end is not None:
        upper = ds.field("event_date") <= end
        flt = upper if flt is None else flt & upper
    return dataset.to_table(filter=flt).to_pandas()
