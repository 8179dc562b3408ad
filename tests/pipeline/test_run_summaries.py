"""Run summaries: one writer, JSON and both warehouse tables, replaced per run date."""

from __future__ import annotations

import json
from datetime import date

from pipeline.contracts import BotActivity, RunSummary
from pipeline.lake import Lake
from pipeline.run_summaries import read_run_summary, record_bot_activity, record_run_summaries
from pipeline.warehouse import Warehouse


def _summary(clean: int, reasons: dict[str, int]) -> RunSummary:
    q = sum(reasons.values())
    return RunSummary("shop", "2026-01-02", clean + q + 1, clean, q, 1, reasons)


def test_a_rerun_replaces_the_json_and_the_rows(tmp_path):
    lake, wh = Lake(tmp_path / "lake"), Warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    record_run_summaries([_summary(10, {"malformed": 2, "too_late": 1})], lake=lake, warehouse=wh)
    record_run_summaries([_summary(12, {"malformed": 3})], lake=lake, warehouse=wh)
    assert read_run_summary(lake, "2026-01-02").clean_rows == 12
    assert json.loads(lake.summary_path(date(2026, 1, 2)).read_text())["quarantined_rows"] == 3
    assert wh.query("SELECT raw_rows, clean_rows, unaccounted_rows FROM etl_run_summary") == [
        (16, 12, 0)
    ]
    assert wh.query("SELECT reason, rows FROM etl_quarantine_counts") == [("malformed", 3)]
    assert not list(lake.summary_path("2026-01-02").parent.glob(".*tmp"))


def test_bot_activity_is_keyed_by_event_date(tmp_path):
    wh = Warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    record_bot_activity(
        [BotActivity("shop", "2026-01-01", 2, 300), BotActivity("shop", "2026-01-02", 0, 0)],
        warehouse=wh,
    )
    record_bot_activity([BotActivity("shop", "2026-01-02", 1, 90)], warehouse=wh)
    rows = wh.query("SELECT event_date, bot_users, bot_events FROM etl_bot_activity ORDER BY 1")
    assert rows == [(date(2026, 1, 1), 2, 300), (date(2026, 1, 2), 1, 90)]
