"""Replace date partitions of a lake table safely: staged, then swapped in under the table's lock.

Which partitions a write owns is decided from the data (the partition folders the write itself
produced in its own staging folder), never from file times: a file system with coarse timestamps
or another machine's clock cannot make a run delete fresh data.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipeline.lake import table_lock

SORT_COLUMNS = ("user_id", "event_time", "event_id", "source_file", "line_number")


def stage_partitions(
    df: DataFrame, table: Path, *, column: str, dates: list[date]
) -> tuple[Path, dict[str, Path]]:
    """Write the rows of ``dates`` to a new staging folder beside the table.

    Returns (staging folder, {date: its partition folder}) for the dates that have rows. Rows are
    sorted within their Spark partitions, not shuffled by date (one less full shuffle; each task
    writes one file per date it holds).
    """
    staging = table.parent / "_staging" / f"{table.name}-{uuid.uuid4().hex}"
    rows = df.filter(F.col(column).isin(dates))
    order = [c for c in SORT_COLUMNS if c in df.columns]
    rows.sortWithinPartitions(column, *order).write.partitionBy(column).parquet(str(staging))
    produced = {p.name.split("=", 1)[1]: p for p in staging.glob(f"{column}=*") if p.is_dir()}
    return staging, produced


def write_partitions(df: DataFrame, table: Path, *, column: str, dates: list[date]) -> list[str]:
    """Replace exactly the ``column`` partitions in ``dates``; the others stay as they are.

    A date in ``dates`` without rows has its partition removed, so a rerun never leaves a stale
    partition behind. Returns the dates written.
    """
    staging, produced = None, {}
    try:
        staging, produced = stage_partitions(df, table, column=column, dates=dates)
        swap_partitions(table, column=column, dates=dates, produced=produced)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(produced)


def swap_partitions(
    table: Path, *, column: str, dates: list[date], produced: dict[str, Path]
) -> None:
    """Under the table's exclusive lock: each date's new folder replaces the old, or the old goes."""
    trash = table.parent / "_staging" / f"trash-{uuid.uuid4().hex}"
    trash.mkdir(parents=True)
    table.mkdir(parents=True, exist_ok=True)
    try:
        with table_lock(table, shared=False):
            for d in sorted(x.isoformat() for x in dates):
                target = table / f"{column}={d}"
                if target.exists():
                    target.rename(trash / target.name)
                if d in produced:
                    produced[d].rename(target)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
