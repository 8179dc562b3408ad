"""The backfill DAG loads a range of daily exports as one run: every raw row accounted for, gated.

Runs on generated data, so it needs nothing from ../shared (the Online Retail test covers the
same DAG on the real log where that file is present).
"""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest

from dags.run import run_dag
from pipeline.lake import Lake
from pipeline.sample_data import SampleConfig, generate
from pipeline.warehouse import Warehouse
from tests.conftest import use_data_dir

pytestmark = pytest.mark.slow


def test_a_range_load_accounts_for_every_row_and_reruns_change_nothing(
    spark, tmp_path, monkeypatch
):
    settings = use_data_dir(monkeypatch, tmp_path)
    raw = tmp_path / "export"
    manifest = generate(raw, SampleConfig(start=date(2026, 1, 1), days=4, users=60, seed=21))
    conf = {"source": "sample_clickstream", "path": str(raw),
            "from_date": "2026-01-01", "to_date": "2026-01-06"}  # fmt: skip

    assert run_dag("clickstream_backfill", conf) == "success"
    wh = Warehouse(settings.warehouse_url)
    summary_sql = (
        "SELECT count(*), sum(raw_rows), sum(clean_rows), sum(unaccounted_rows) "
        "FROM etl_run_summary WHERE source = 'sample_clickstream'"
    )
    days, raw_rows, clean_rows, unaccounted = wh.query(summary_sql)[0]
    assert days == 6  # one summary per event day of the range, empty days included
    assert raw_rows == sum(f["raw_rows"] for f in manifest["files"].values())
    assert unaccounted == 0
    lake = settings.source_lake("sample_clickstream")
    sessionized = duckdb.sql(
        f"SELECT count(*), count(DISTINCT event_id), count(session_id) "
        f"FROM read_parquet('{lake}/sessionized_events/*/*.parquet')"
    ).fetchall()[0]
    assert sessionized == (clean_rows, clean_rows, clean_rows)
    # Each gate left its result for the range's run date.
    docs = settings.data_docs_dir / "sample_clickstream" / "runs" / "2026-01-06"
    for suite in ("run_summary", "quarantined_rows", "clean_events", "sessionized_events"):
        assert json.loads((docs / f"{suite}.json").read_text())["success"] is True

    assert run_dag("clickstream_backfill", conf) == "success"
    assert wh.query(summary_sql)[0] == (days, raw_rows, clean_rows, unaccounted)


def test_a_wrong_range_fails_without_retries(tmp_path, monkeypatch):
    use_data_dir(monkeypatch, tmp_path)
    conf = {"source": "sample_clickstream", "path": str(tmp_path),
            "from_date": "2026-01-06", "to_date": "2026-01-01"}  # fmt: skip
    assert run_dag("clickstream_backfill", conf) == "failed"


def test_a_range_outside_the_export_fails_without_retries(spark, tmp_path, monkeypatch):
    """An export (no day folders) none of whose rows belongs to the range: the task fails at
    once, naming the export's days, and writes nothing."""
    settings = use_data_dir(monkeypatch, tmp_path)
    raw = tmp_path / "history"
    raw.mkdir()
    rows = [
        {"event_id": f"e{i}", "user_id": "u1", "ts": f"2026-01-0{i}T10:00:00Z", "type": "view",
         "item_id": "I1"}
        for i in (1, 2)
    ]  # fmt: skip
    (raw / "dump.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    conf = {"source": "sample_clickstream", "path": str(raw),
            "from_date": "2025-06-01", "to_date": "2025-06-30"}  # fmt: skip
    assert run_dag("clickstream_backfill", conf) == "failed"
    events = Lake(settings.source_lake("sample_clickstream")).events
    assert not events.exists() or not any(events.iterdir())
    wh = Warehouse(settings.warehouse_url)
    assert wh.query("SELECT count(*) FROM etl_run_summary")[0][0] == 0
