"""Where a source's lake tables live, and reading them without Spark (pyarrow).

    <data>/lake/<source>/events/event_date=YYYY-MM-DD/*.parquet          clean events
    <data>/lake/<source>/sessionized_events/event_date=.../*.parquet     + session_id, is_bot
    <data>/lake/<source>/quarantine/ingest_date=.../*.parquet            rejected rows, with reason
    <data>/lake/<source>/examples/cutoff_date=.../*.parquet              model inputs per user
    <data>/lake/<source>/training_examples/cutoff_date=.../*.parquet     the same, with labels
    <data>/lake/<source>/scores/score_date=.../*.parquet                 scored users (nightly)
    <data>/lake/<source>/item_embeddings/text_model=.../items.parquet    item text vectors
    <data>/lake/<source>/_runs/run_date=.../summary.json                 row accounting per run

The model, the gates and scoring read here; only the Spark jobs write.

Concurrency. Runs for neighbouring days rebuild overlapping partitions (late events), and any
number of them may run at once (a backfill). Writers build their partitions in a staging folder,
then swap them into place under an exclusive lock of the table; readers hold a shared lock of the
table while they read. So a reader never lists a file that a writer removes under it, and the
lake after concurrent runs equals the lake after the same runs one by one. The locks are
``flock`` locks on ``<lake>/_locks/<table>.lock``: they work on a local or POSIX shared file system
(NFS with locking); an object store would need a table format (Delta, Iceberg) instead.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from pipeline.contracts import LAKE_PARTITION_COLUMN, LAKE_TABLE_SCHEMAS


@dataclass(frozen=True)
class Lake:
    """The lake folder of one source."""

    root: Path

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def sessionized_events(self) -> Path:
        return self.root / "sessionized_events"

    @property
    def examples(self) -> Path:
        """Per (user, cutoff) model inputs (``jobs.examples``), partitioned by cutoff_date."""
        return self.root / "examples"

    @property
    def training_examples(self) -> Path:
        """The example shards a training run reads: the same rows as ``examples`` (one builder,
        ``jobs.examples.build_examples``) with labels, at the training and validation cutoffs.

        A table of its own so that nightly scoring, which rebuilds ``examples`` for the date it
        scores (a backfill may score a past date), never replaces a shard a training run is
        reading with one that has no labels.
        """
        return self.root / "training_examples"

    @property
    def item_embeddings(self) -> Path:
        """Item text vectors per text model (``behavior_model.item_embeddings``)."""
        return self.root / "item_embeddings"

    @property
    def scores(self) -> Path:
        """Nightly scoring's per-user output, partitioned by score_date; the warehouse is loaded
        from here."""
        return self.root / "scores"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def staging(self) -> Path:
        """Where writers build partitions before swapping them in (same file system)."""
        return self.root / "_staging"

    def summary_path(self, run_date: date | str) -> Path:
        day = run_date if isinstance(run_date, str) else run_date.isoformat()
        return self.root / "_runs" / f"run_date={day}" / "summary.json"


@contextmanager
def table_lock(table: Path, *, shared: bool) -> Iterator[None]:
    """Hold the table's lock: shared for reading, exclusive for swapping partitions in."""
    lock_dir = table.parent / "_locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{table.name}.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_partitions(
    path: Path, *, start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """Rows whose partition date is in [start, end] from a lake table, with its declared schema.

    ``path`` is a table folder (its name picks the schema: ``events``, ``sessionized_events``,
    ``quarantine``). A table that does not exist yet reads as an empty frame.
    """
    if path.name not in LAKE_TABLE_SCHEMAS:
        raise ValueError(f"{path}: not a lake table; known: {sorted(LAKE_TABLE_SCHEMAS)}")
    schema = LAKE_TABLE_SCHEMAS[path.name]
    if not path.exists():
        return schema.empty_table().to_pandas()
    column = LAKE_PARTITION_COLUMN[path.name]
    flt = None
    if start is not None:
        flt = ds.field(column) >= start
    if end is not None:
        upper = ds.field(column) <= end
        flt = upper if flt is None else flt & upper
    with table_lock(path, shared=True):
        dataset = ds.dataset(path, schema=schema, format="parquet", partitioning="hive")
        table = dataset.to_table(filter=flt)
    return table.to_pandas()


def without_bots(events: pd.DataFrame) -> pd.DataFrame:
    """Drop every event of a user flagged as a bot on any day read (training and scoring)."""
    if "is_bot" not in events.columns:
        return events
    bots = events.loc[events["is_bot"], "user_id"].unique()
    return events[~events["user_id"].isin(bots)]
