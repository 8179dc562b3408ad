"""Partition replacement: owned dates replaced, emptied ones removed, decided from the data."""

from __future__ import annotations

import threading
import time
from datetime import date

from jobs.partitions import write_partitions
from pipeline.lake import table_lock

D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)
SCHEMA = "user_id string, event_date date"


def _rows(spark, path):
    return {(r.user_id, r.event_date) for r in spark.read.parquet(str(path)).collect()}


def test_replaces_owned_dates_and_removes_emptied_ones(spark, tmp_path):
    path = tmp_path / "events"
    first = spark.createDataFrame([("a", D1), ("b", D2), ("c", D3)], SCHEMA)
    assert write_partitions(first, path, column="event_date", dates=[D1, D2, D3]) == [
        str(D1), str(D2), str(D3),
    ]  # fmt: skip
    # The rerun owns d1 and d2 only; d2 has no rows any more; d3 is not touched.
    second = spark.createDataFrame([("x", D1), ("y", D3)], SCHEMA)
    assert write_partitions(second, path, column="event_date", dates=[D1, D2]) == [str(D1)]
    assert _rows(spark, path) == {("x", D1), ("c", D3)}
    assert sorted(p.name for p in path.iterdir()) == [f"event_date={D1}", f"event_date={D3}"]
    # Nothing is left behind in the staging area.
    assert not any((tmp_path / "_staging").iterdir())


def test_a_clock_ahead_of_the_file_system_does_not_delete_fresh_partitions(
    spark, tmp_path, monkeypatch
):
    """Bug: partitions were kept only if their files were newer than the write's start (mtime).

    A clock one hour ahead of the file system (another machine's clock, a coarse timestamp) made
    every freshly written partition look stale, and the run deleted the data it had just written.
    """
    path = tmp_path / "events"
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
    df = spark.createDataFrame([("a", D1), ("b", D2)], SCHEMA)
    assert write_partitions(df, path, column="event_date", dates=[D1, D2]) == [str(D1), str(D2)]
    monkeypatch.setattr(time, "time", real_time)
    assert _rows(spark, path) == {("a", D1), ("b", D2)}


def test_the_swap_waits_for_readers_of_the_table(spark, tmp_path):
    path = tmp_path / "events"
    write_partitions(
        spark.createDataFrame([("a", D1)], SCHEMA), path, column="event_date", dates=[D1]
    )
    swapped = threading.Event()

    def rewrite():
        df = spark.createDataFrame([("b", D1)], SCHEMA)
        write_partitions(df, path, column="event_date", dates=[D1])
        swapped.set()

    with table_lock(path, shared=True):
        writer = threading.Thread(target=rewrite)
        writer.start()
        # The writer stages its files, then waits: the reader still sees the old partition.
        assert not swapped.wait(timeout=15)
        assert _rows(spark, path) == {("a", D1)}
    writer.join(timeout=60)
    assert swapped.is_set()
    assert _rows(spark, path) == {("b", D1)}
