"""Parsing: line numbers per file, CSV and JSON lines to fields, source times to UTC."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

import jobs.clean
from jobs.clean import read_raw_lines
from jobs.parse import number_lines, parse_time
from jobs.raw_files import inspect
from pipeline.sample_data import SampleConfig, generate
from pipeline.source_mapping import load_mapping


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    generate(raw, SampleConfig(days=6, users=120, seed=11, late_rate=0.05, duplicate_rate=0.05))
    return raw, None, None


def test_both_line_numbering_strategies_agree(spark, small_sample):
    raw, _, _ = small_sample
    files = [str(p) for p in sorted(raw.glob("date=*/events.jsonl"))]
    # Small splits: every file spans several Spark partitions, some shared with another file.
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16384")
    try:
        lines = spark.read.text(files).select(
            F.col("_metadata.file_path").alias("source_file"), F.col("value").alias("raw_line")
        )
        assert lines.rdd.getNumPartitions() > 2 * len(files)
        a = number_lines(lines, sort=True).orderBy("source_file", "line_number").collect()
        b = number_lines(lines, sort=False).orderBy("source_file", "line_number").collect()
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert a == b
    first = {}
    for r in a:
        first.setdefault(r.source_file, []).append(r.line_number)
    assert all(ns == list(range(1, len(ns) + 1)) for ns in first.values())
    on_disk = (raw / "date=2026-01-02" / "events.jsonl").read_text().splitlines()
    got = [r.raw_line for r in a if r.source_file.endswith("date=2026-01-02/events.jsonl")]
    assert got == on_disk


@pytest.mark.parametrize("sort", [True, False])
def test_day_folders_read_together_keep_their_day_and_file_order(
    spark, small_sample, monkeypatch, sort
):
    """All arrival days are numbered in one pass (a union of the days' reads): each line keeps
    its folder's day and its place in its own file, with either numbering strategy."""
    raw, _, _ = small_sample
    mapping = load_mapping("sample_clickstream")
    folders = sorted(raw.glob("date=*"))
    files = [
        inspect(p, mapping, date.fromisoformat(folder.name.split("=")[1]))
        for folder in folders
        for p in sorted(folder.glob("*.jsonl"))
    ]
    monkeypatch.setattr(jobs.clean, "SORT_LINES_BELOW_BYTES", 2**40 if sort else 0)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16384")
    try:
        ((header, lines),) = read_raw_lines(spark, files)
        got = lines.collect()
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert header is None
    by_file: dict[str, list] = {}
    for r in got:
        by_file.setdefault(r.source_file, []).append(r)
    assert len(by_file) == len(files) > 2
    for f in files:
        (rows,) = [
            rs for name, rs in by_file.items() if name.endswith(f.path.relative_to(raw).as_posix())
        ]
        rows.sort(key=lambda r: r.line_number)
        assert {r.arrival_date for r in rows} == {f.arrival_date}
        assert [r.line_number for r in rows] == list(range(1, len(rows) + 1))
        assert [r.raw_line for r in rows] == f.path.read_text().splitlines()


def test_number_lines_follows_file_order(spark):
    df = spark.createDataFrame(
        [("a", "x"), ("a", "y"), ("b", "z")], "source_file string, raw_line string"
    )
    got = number_lines(df).orderBy("source_file", "line_number").collect()
    assert [(r.source_file, r.line_number, r.raw_line) for r in got] == [
        ("a", 1, "x"), ("a", 2, "y"), ("b", 1, "z"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "formats", "tz", "expected"),
    [
        ("2026-01-03T10:00:00Z", ["iso8601"], "UTC", datetime(2026, 1, 3, 10)),
        ("2026-01-03T11:00:00+01:00", ["iso8601"], "Europe/Berlin", datetime(2026, 1, 3, 10)),
        ("2026-07-03 10:00:00", ["yyyy-MM-dd HH:mm:ss"], "Europe/London", datetime(2026, 7, 3, 9)),
        ("1767434400000", ["iso8601", "epoch_ms"], "UTC", datetime(2026, 1, 3, 10)),
        ("2026-01-03", ["epoch_s"], "UTC", None),  # an ISO date is not a number of seconds
        ("yesterday", ["iso8601", "epoch_ms"], "UTC", None),
    ],
)
def test_parse_time_honours_formats_offsets_and_zone(spark, raw, formats, tz, expected):
    df = spark.createDataFrame([(raw,)], "t string")
    got = df.select(parse_time(F.col("t"), formats=formats, tz=tz).alias("x")).first().x
    assert got == expected
