"""Gate entry points the DAG tasks call: read a stage's output, run its suite, raise on failure."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd

from expectations import suites
from expectations.gate import run_gate
from jobs.clean import read_summary
from jobs.lake import read_partitions
from jobs.settings import get_settings
from jobs.source_mapping import load_mapping


def validate_clean_events(source: str, run_date: date) -> dict:
    """Gate after the clean job: the run summary reconciles and the rebuilt partitions are sound."""
    settings = get_settings()
    mapping = load_mapping(source)
    lake = settings.source_lake(mapping.name)
    docs = settings.data_docs_dir / mapping.name / run_date.isoformat()
    summary = read_summary(lake, run_date)
    row = asdict(summary) | {"unaccounted_rows": summary.unaccounted_rows}
    row.pop("quarantined_by_reason"), row.pop("partitions_written"), row.pop("raw_files")
    run_gate(
        "run_summary",
        pd.DataFrame([row]),
        suites.run_summary(),
        docs_path=docs / "run_summary.json",
    )

    first = run_date - timedelta(days=mapping.lateness_days)
    events = read_partitions(lake / "events", start=first, end=run_date)
    window_start = datetime.combine(first, time(), tzinfo=UTC)
    window_end = datetime.combine(run_date + timedelta(days=1), time(), tzinfo=UTC)
    return run_gate(
        "clean_events",
        events,
        suites.clean_events(window_start=window_start, window_end=window_end),
        docs_path=docs / "clean_events.json",
    )


def validate_sessionized_events(source: str, run_date: date) -> dict:
    settings = get_settings()
    mapping = load_mapping(source)
    lake = settings.source_lake(mapping.name)
    first = run_date - timedelta(days=mapping.lateness_days)
    events = read_partitions(lake / "sessionized_events", start=first, end=run_date)
    docs = settings.data_docs_dir / mapping.name / run_date.isoformat()
    return run_gate(
        "sessionized_events",
        events,
        suites.sessionized_events(),
        docs_path=docs / "sessionized_events.json",
    )
