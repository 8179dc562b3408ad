"""The clean job: parsing, reasons, duplicates, late events, accounting, idempotency, PII."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from jobs.clean import (
    EDGE_SPACE,
    MissingExportError,
    NothingInRangeError,
    clean_day,
    mark_duplicates,
    normalize_events,
)
from jobs.ingest import ingest_range
from jobs.parse import number_lines, parse_lines
from pipeline.lake import Lake, read_partitions
from pipeline.sample_data import SampleConfig, generate
from pipeline.source_mapping import SourceMapping, load_mapping

SAMPLE = load_mapping("sample_clickstream")
WINDOW = dict(
    window_start=datetime(2026, 1, 1, tzinfo=UTC), window_end=datetime(2026, 1, 4, tzinfo=UTC)
)


def _line(**overrides) -> str:
    row = {
        "event_id": "e1",
        "user_id": "u1",
        "ts": "2026-01-03T10:00:00Z",
        "type": "page_view",
        "item_id": "I1",
        "category": "toys",
        "item_text": "RED KITE",
        "price": 2.5,
        "qty": 1,
        "email": "someone@example.com",
    }
    row.update(overrides)
    return json.dumps({k: v for k, v in row.items() if v is not ...})


def _classify(spark, lines: list[str], mapping: SourceMapping = SAMPLE):
    df = spark.createDataFrame(
        [(date(2026, 1, 3), "f.jsonl", line) for line in lines],
        "arrival_date date, source_file string, raw_line string",
    )
    parsed = parse_lines(number_lines(df), mapping=mapping)
    return normalize_events(parsed, mapping=mapping, **WINDOW)


def test_each_bad_row_gets_its_reason(spark):
    lines = [
        _line(),
        '{"event_id": "e2", "user_id": ',
        _line(event_id="e3", user_id=""),
        _line(event_id="e4", user_id=...),
        _line(event_id="e5", ts="yesterday"),
        _line(event_id="e6", type="click"),
        _line(event_id="e7", price=-1.0),
        _line(event_id="e8", price="cheap"),
        _line(event_id="e9", ts="2026-01-04T00:00:00Z"),
        _line(event_id="e10", ts="2025-12-31T23:59:59Z"),
        _line(event_id="e11", item_id=None),
        "",
    ]
    got = _classify(spark, lines).orderBy("line_number").select("reason").collect()
    assert [r.reason for r in got] == [
        None,
        "malformed",
        "missing_user_id",
        "missing_user_id",
        "bad_timestamp",
        "unknown_event_type",
        "negative_price",
        "bad_number",
        "future_event",
        "too_late",
        "missing_item_id",
        "malformed",
    ]


def test_edge_space_is_the_unicode_whitespace_java_regexes_know(spark):
    """The trimmed set is exactly Java's ``(?U)\\s`` (Unicode White_Space) plus the zero-width
    space and the BOM, over the whole Basic Multilingual Plane (no other plane has whitespace)."""
    chars = spark.createDataFrame(
        [(chr(c),) for c in range(0x10000) if not 0xD800 <= c < 0xE000], "c string"
    )
    java = chars.filter(F.col("c").rlike(r"(?U)^[\s\u200B\uFEFF]$")).collect()
    assert sorted(ord(r.c) for r in java) == sorted(map(ord, EDGE_SPACE))
    assert len(EDGE_SPACE) == 27


def test_valid_row_maps_to_the_contract(spark):
    row = _classify(
        spark, [_line(type="add_to_cart", qty=3, ts="2026-01-03T11:00:00+01:00")]
    ).first()
    assert row.reason is None
    assert (row.event_id, row.user_id, row.event_type, row.item_id) == ("e1", "u1", "cart", "I1")
    assert row.event_time == datetime(2026, 1, 3, 10, 0)  # +01:00 offset honoured, stored as UTC
    assert (row.price, row.quantity, row.event_date) == (2.5, 3, date(2026, 1, 3))


def test_csv_mapping_with_local_time_and_return_rule(spark):
    mapping = SourceMapping.model_validate(
        {
            "name": "shop_csv",
            "format": "csv",
            "columns": {"user_id": "cust", "event_time": "when", "item_id": "sku",
                        "price": "price", "quantity": "qty"},
            "default_event_type": "purchase",
            "timestamp": {"format": "yyyy-MM-dd HH:mm:ss", "timezone": "Europe/London"},
            "returns": {"negative_quantity": True, "column": "inv", "prefix": "C"},
        }
    )  # fmt: skip
    lines = [
        "inv,sku,qty,when,price,cust",
        "A1,X,2,2026-01-03 10:00:00,1.5,17850.0",
        "C2,X,-2,2026-01-03 11:00:00,1.5,17850.0",
        "A3,Y,1,2026-07-03 10:00:00,1.0,",
    ]
    df = spark.createDataFrame(
        [(date(2026, 1, 3), "f.csv", line) for line in lines],
        "arrival_date date, source_file string, raw_line string",
    )
    header = ("inv", "sku", "qty", "when", "price", "cust")
    parsed = parse_lines(number_lines(df), mapping=mapping, columns=header)
    window = dict(
        window_start=datetime(2026, 1, 1, tzinfo=UTC), window_end=datetime(2026, 12, 1, tzinfo=UTC)
    )
    rows = normalize_events(parsed, mapping=mapping, **window).orderBy("line_number").collect()
    assert len(rows) == 3  # the header is not a row
    assert [(r.user_id, r.event_type, r.quantity, r.reason) for r in rows] == [
        ("17850", "purchase", 2, None),
        ("17850", "return", 2, None),
        (None, "purchase", None, "missing_user_id"),  # quantity is only kept on valid rows
    ]
    assert rows[0].event_time == datetime(2026, 1, 3, 10, 0)  # GMT in winter
    assert rows[0].event_id != rows[1].event_id  # hashed from the raw line


def test_duplicates_keep_the_first_arrival(spark):
    df = spark.createDataFrame(
        [
            (date(2026, 1, 3), "b", 1, "e1", None),
            (date(2026, 1, 2), "a", 5, "e1", None),
            (date(2026, 1, 2), "a", 7, "e1", None),
            (date(2026, 1, 2), "a", 8, "e2", "malformed"),
            (date(2026, 1, 2), "a", 9, "e2", None),
        ],
        "run_date date, source_file string, line_number long, event_id string, reason string",
    )
    got = mark_duplicates(df).orderBy("run_date", "line_number").collect()
    assert [(r.line_number, r.is_duplicate) for r in got] == [
        (5, False), (7, True), (8, False), (9, False), (1, True),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw")
    cfg = SampleConfig(days=6, users=120, seed=11, late_rate=0.05, duplicate_rate=0.05)
    return raw, generate(raw, cfg), cfg


def _lake_rows(lake):
    events = read_partitions(lake.events)
    return events.sort_values("event_id").reset_index(drop=True)


def test_every_raw_row_is_accounted_for_and_matches_the_planted_dirt(spark, small_sample, tmp_path):
    raw, manifest, cfg = small_sample
    lake = Lake(tmp_path / "lake")
    for day, planted in manifest["files"].items():
        s = clean_day(
            spark, mapping=SAMPLE, raw_root=raw, lake=lake, run_date=date.fromisoformat(day)
        )
        _matches_the_planted_dirt(s, planted)
    # Every clean row of every file is in the lake exactly once.
    total_clean = sum(f.get("clean", 0) for f in manifest["files"].values())
    events = _lake_rows(lake)
    assert len(events) == total_clean
    assert events["event_id"].is_unique
    assert (
        events["event_time"].dt.date == events["event_date"].astype(str).map(date.fromisoformat)
    ).all()


def _matches_the_planted_dirt(s, planted: dict) -> None:
    assert s.raw_rows == planted["raw_rows"]
    assert s.raw_rows == s.clean_rows + s.quarantined_rows + s.duplicate_rows
    assert s.clean_rows == planted.get("clean", 0)
    assert s.duplicate_rows == planted.get("duplicate", 0)
    reasons = {
        k: v for k, v in planted.items() if k not in ("raw_rows", "clean", "duplicate", "late")
    }
    assert s.quarantined_by_reason == reasons


def test_a_backfill_of_day_folders_hands_over_to_the_daily_runs(spark, small_sample, tmp_path):
    """A range load over the daily layout, with later days' files already there, then daily runs:
    each day counted once, as its daily run counts it, and the lake the daily runs' lake."""
    raw, manifest, _ = small_sample
    days = [date.fromisoformat(d) for d in manifest["files"]]
    daily = Lake(tmp_path / "daily")
    for d in days:
        clean_day(spark, mapping=SAMPLE, raw_root=raw, lake=daily, run_date=d)

    lake = Lake(tmp_path / "lake")

    def backfill():
        load = ingest_range(spark, mapping=SAMPLE, path=raw, first=days[0], last=days[2], lake=lake)
        return load.summaries

    summaries = {s.run_date: s for s in backfill()}
    assert sorted(summaries) == [d.isoformat() for d in days[:3]]
    for d in days[3:]:
        s = clean_day(spark, mapping=SAMPLE, raw_root=raw, lake=lake, run_date=d)
        summaries[s.run_date] = s
    # Rows of later days' files are neither quarantined as future events nor counted twice.
    for day, planted in manifest["files"].items():
        _matches_the_planted_dirt(summaries[day], planted)
    assert summaries[days[2].isoformat()].raw_files == [
        str(p) for p in sorted((raw / days[2].strftime(SAMPLE.day_folder)).iterdir())
    ]
    pd.testing.assert_frame_equal(_lake_rows(lake), _lake_rows(daily))

    # A daily rerun inside the loaded range, and the load again, change nothing.
    again = clean_day(spark, mapping=SAMPLE, raw_root=raw, lake=lake, run_date=days[1])
    _matches_the_planted_dirt(again, manifest["files"][days[1].isoformat()])
    for s in backfill():
        _matches_the_planted_dirt(s, manifest["files"][s.run_date])
    pd.testing.assert_frame_equal(_lake_rows(lake), _lake_rows(daily))


def _export_of(raw, folder):
    """The sample's day files as one export outside day folders (a history dump), plus a row
    without a usable time."""
    lines = [_line(event_id="no-time", ts="soon").encode()]
    for f in sorted(p for p in raw.rglob("*") if p.is_file()):
        data = f.read_bytes()
        lines += (gzip.decompress(data) if f.suffix == ".gz" else data).splitlines()
    folder.mkdir()
    (folder / "history.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return folder, len(lines)


def test_an_export_loaded_in_parts_counts_each_row_once(spark, small_sample, tmp_path):
    """One export loaded as one range or as two: the same summary per day, lake and quarantine;
    each part leaves the other part's rows alone and says how many it left."""
    raw, manifest, _ = small_sample
    export, lines = _export_of(raw, tmp_path / "export")
    days = [date.fromisoformat(d) for d in manifest["files"]]
    first, last = days[0] - timedelta(days=7), days[-1] + timedelta(days=3)
    middle = days[2]

    def load(lake, a, b):
        return ingest_range(spark, mapping=SAMPLE, path=export, first=a, last=b, lake=lake)

    whole_lake, parts_lake = Lake(tmp_path / "whole"), Lake(tmp_path / "parts")
    whole = load(whole_lake, first, last)
    early, late = (
        load(parts_lake, first, middle),
        load(parts_lake, middle + timedelta(days=1), last),
    )

    assert whole.other_days.rows == 0
    assert sum(s.raw_rows for s in whole.summaries) == lines
    assert all(s.unaccounted_rows == 0 for s in whole.summaries)

    def counts(summaries):
        return {
            s.run_date: (s.raw_rows, s.clean_rows, s.duplicate_rows, s.quarantined_by_reason)
            for s in summaries
        }

    assert counts(early.summaries) | counts(late.summaries) == counts(whole.summaries)
    early_rows, late_rows = (sum(s.raw_rows for s in x.summaries) for x in (early, late))
    assert early_rows > 0 and late_rows > 0
    assert (early.other_days.rows, late.other_days.rows) == (late_rows, early_rows)
    assert early.other_days.first_day > middle and late.other_days.last_day <= middle
    # Run-window reasons never apply to an export; rows without a time go to its last event day.
    days_of: dict[str, set[str]] = {}
    for s in whole.summaries:
        for reason in s.quarantined_by_reason:
            days_of.setdefault(reason, set()).add(s.run_date)
    assert not {"future_event", "too_late"} & set(days_of)
    last_event_day = max(s.run_date for s in whole.summaries if s.clean_rows)
    assert days_of["malformed"] == days_of["bad_timestamp"] == {last_event_day}

    pd.testing.assert_frame_equal(_lake_rows(parts_lake), _lake_rows(whole_lake))
    by_line = ["source_file", "line_number"]
    quarantined = [
        read_partitions(lake.quarantine).sort_values(by_line).reset_index(drop=True)
        for lake in (parts_lake, whole_lake)
    ]
    pd.testing.assert_frame_equal(*quarantined)

    # A range that holds none of the export's days is a mistake: it fails before writing.
    before = _lake_rows(parts_lake)
    with pytest.raises(NothingInRangeError, match=rf"none of the {lines:,} rows of history.jsonl"):
        load(parts_lake, first - timedelta(days=30), first - timedelta(days=1))
    pd.testing.assert_frame_equal(_lake_rows(parts_lake), before)


def test_late_events_land_in_their_own_partition_and_reruns_change_nothing(
    spark, small_sample, tmp_path
):
    raw, manifest, _ = small_sample
    lake = Lake(tmp_path / "lake")
    days = [date.fromisoformat(d) for d in manifest["files"]]
    for d in days:
        clean_day(spark, mapping=SAMPLE, raw_root=raw, lake=lake, run_date=d)
    first = _lake_rows(lake)
    late_total = sum(f.get("late", 0) for f in manifest["files"].values())
    assert late_total > 0
    # Rerun every date in reverse order, then one date twice: the lake is the same.
    for d in reversed(days):
        clean_day(spark, mapping=SAMPLE, raw_root=raw, lake=lake, run_date=d)
    clean_day(spark, mapping=SAMPLE, raw_root=raw, lake=lake, run_date=days[2])
    again = _lake_rows(lake)
    pd.testing.assert_frame_equal(first, again)


def test_quarantine_keeps_file_line_and_reason_without_personal_data(spark, small_sample, tmp_path):
    raw, manifest, _ = small_sample
    lake = Lake(tmp_path / "lake")
    day = date.fromisoformat(next(iter(manifest["files"])))
    summary = clean_day(spark, mapping=SAMPLE, raw_root=raw, lake=lake, run_date=day)
    q = pq.read_table(lake.quarantine / f"ingest_date={day}").to_pandas()
    assert len(q) == summary.quarantined_rows > 0
    assert q["source_file"].str.endswith("events.jsonl").all()
    raw_lines = (raw / f"date={day}" / "events.jsonl").read_text().splitlines()
    for r in q.itertuples():
        assert r.line_number >= 1
        original = raw_lines[r.line_number - 1]
        assert r.raw_line.split('"email"')[0] == original.split('"email"')[0]
    # No email or ip value from the raw files appears anywhere under the lake.
    personal = {v for line in raw_lines for v in _personal_values(line)}
    blob = b"".join(p.read_bytes() for p in lake.root.rglob("*") if p.is_file())
    assert personal and not any(v.encode() in blob for v in personal)


def _personal_values(line: str) -> list[str]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return []
    return [row[k] for k in ("email", "ip") if row.get(k)]


def test_a_missing_day_fails_with_the_folder_name(spark, tmp_path):
    with pytest.raises(
        MissingExportError, match=r"no raw files for 2026-02-01 in .*date=2026-02-01"
    ):
        clean_day(
            spark,
            mapping=SAMPLE,
            raw_root=tmp_path,
            lake=Lake(tmp_path / "lake"),
            run_date=date(2026, 2, 1),
        )
