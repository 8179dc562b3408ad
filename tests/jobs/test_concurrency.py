"""Daily runs at once give the same lake as the same days run one by one, in any order.

Neighbouring days rebuild overlapping partitions (late events), so this is where concurrent runs
used to fail (a reader listing a file another run had just replaced) or differ.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from jobs import clean, sessionize
from pipeline.context import RunContext
from pipeline.lake import read_partitions
from pipeline.sample_data import SampleConfig, generate
from pipeline.source_mapping import load_mapping

pytestmark = pytest.mark.slow
SAMPLE = load_mapping("sample_clickstream")


def _day(settings, day: date, raw) -> None:
    ctx = RunContext(settings, SAMPLE, day)
    clean.run(ctx, raw_path=raw)
    sessionize.run(ctx)


def _lake(settings) -> dict[str, pd.DataFrame]:
    lake = RunContext(settings, SAMPLE, date(2026, 1, 1)).lake
    keys = {"events": ["event_id"], "sessionized_events": ["event_id"],
            "quarantine": ["source_file", "line_number"]}  # fmt: skip
    return {
        table: read_partitions(lake.root / table).sort_values(k).reset_index(drop=True)
        for table, k in keys.items()
    }


def test_overlapping_days_at_once_and_in_reverse_give_the_serial_lake(spark, settings, tmp_path):
    raw = tmp_path / "raw"
    manifest = generate(
        raw / "sample_clickstream", SampleConfig(days=5, users=80, seed=13, late_rate=0.1)
    )
    days = [date.fromisoformat(d) for d in manifest["files"]]
    serial = replace(settings, data_dir=tmp_path / "serial")
    concurrent = replace(settings, data_dir=tmp_path / "concurrent")
    raw = raw / "sample_clickstream"
    serial = replace(serial, warehouse_url=f"duckdb:///{serial.data_dir / 'wh.duckdb'}")
    concurrent = replace(concurrent, warehouse_url=f"duckdb:///{concurrent.data_dir / 'wh.duckdb'}")

    for d in days:
        _day(serial, d, raw)

    # The first days one by one, newest first; then the last three (overlapping windows) at once,
    # started newest first.
    for d in reversed(days[:-3]):
        _day(concurrent, d, raw)
    errors: list[BaseException] = []

    def run(d):
        try:
            _day(concurrent, d, raw)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(d,)) for d in reversed(days[-3:])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert errors == []

    a, b = _lake(serial), _lake(concurrent)
    for table in a:
        assert len(a[table]) > 0, table
        pd.testing.assert_frame_equal(a[table], b[table], check_like=True, obj=table)
    assert not any((concurrent.data_dir / "lake" / "sample_clickstream" / "_staging").iterdir())
