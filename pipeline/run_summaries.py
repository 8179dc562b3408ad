"""The one writer of run summaries: JSON beside the lake and the warehouse rows, once per run.

A run's summary (``pipeline.contracts.RunSummary``) goes to
``<lake>/_runs/run_date=D/summary.json`` (written to a temporary file and renamed, so a reader
never sees half a file) and to ``etl_run_summary`` + ``etl_quarantine_counts`` in one warehouse
transaction. The gates read the JSON; analysts read the tables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date

from pipeline.contracts import BotActivity, RunSummary
from pipeline.lake import Lake
from pipeline.tables import ETL_BOT_ACTIVITY, ETL_QUARANTINE_COUNTS, ETL_RUN_SUMMARY
from pipeline.warehouse import Replacement, Warehouse


def record_run_summaries(
    summaries: Sequence[RunSummary], *, lake: Lake, warehouse: Warehouse
) -> None:
    """Write each summary's JSON, then replace its rows in both tables in one transaction."""
    for s in summaries:
        path = lake.summary_path(s.run_date)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(s), indent=2))
        tmp.replace(path)
    replacements: list[Replacement] = []
    for s in summaries:
        run_date = date.fromisoformat(s.run_date)
        key = {"source": s.source, "run_date": run_date}
        row = (s.source, run_date, s.raw_rows, s.clean_rows, s.quarantined_rows, s.duplicate_rows,
               s.unaccounted_rows)  # fmt: skip
        reasons = [(s.source, run_date, r, n) for r, n in sorted(s.quarantined_by_reason.items())]
        replacements += [(ETL_RUN_SUMMARY, key, [row]), (ETL_QUARANTINE_COUNTS, key, reasons)]
    warehouse.replace_all(replacements)


def read_run_summary(lake: Lake, run_date: date | str) -> RunSummary:
    path = lake.summary_path(run_date)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no run summary (has the clean step run for {run_date}?)")
    return RunSummary(**json.loads(path.read_text()))


def record_bot_activity(activity: Sequence[BotActivity], *, warehouse: Warehouse) -> None:
    """Replace ``etl_bot_activity`` for each (source, event date), in one transaction."""
    replacements: list[Replacement] = []
    for a in activity:
        day = date.fromisoformat(a.event_date)
        key = {"source": a.source, "event_date": day}
        replacements.append((ETL_BOT_ACTIVITY, key, [(a.source, day, a.bot_users, a.bot_events)]))
    if replacements:
        warehouse.replace_all(replacements)
