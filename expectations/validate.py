"""Gate entry points the DAG tasks call: read a stage's output, run its suite, raise on failure.

A daily run for D checks D's summary and the partitions it rebuilt ([D-L, D]); a historical load
(``first`` given) checks every day's summary and every partition in [first, D].
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd

from expectations import suites
from expectations.gate import run_gate
from jobs.clean import read_summary
from jobs.lake import read_partitions
from jobs.settings import get_settings
from jobs.source_mapping import load_mapping


def _scope(source: str, run_date: date, first: date | None) -> tuple[Path, Path, date, list[date]]:
    settings = get_settings()
    mapping = load_mapping(source)
    lake = settings.source_lake(mapping.name)
    docs = settings.data_docs_dir / mapping.name / run_date.isoformat()
    if first is None:
        return lake, docs, run_date - timedelta(days=mapping.lateness_days), [run_date]
    return (
        lake,
        docs,
        first,
        [first + timedelta(days=k) for k in range((run_date - first).days + 1)],
    )


def summaries_frame(lake: Path, days: list[date]) -> pd.DataFrame:
    rows = []
    for d in days:
        s = read_summary(lake, d)
        row = asdict(s) | {"unaccounted_rows": s.unaccounted_rows}
        for k in ("quarantined_by_reason", "partitions_written", "raw_files"):
            row.pop(k)
        rows.append(row)
    return pd.DataFrame(rows)


def read_quarantine(lake: Path, days: list[date]) -> pd.DataFrame:
    """The quarantined rows the given run dates own."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    folder = lake / "quarantine"
    if not folder.exists():
        return pd.DataFrame(columns=["source", "source_file", "line_number", "raw_line", "reason"])
    partitioning = ds.partitioning(pa.schema([("ingest_date", pa.string())]), flavor="hive")
    dataset = ds.dataset(folder, format="parquet", partitioning=partitioning)
    owned = ds.field("ingest_date").isin([d.isoformat() for d in days])
    return dataset.to_table(filter=owned).to_pandas()


def _gate(suite: str, data: pd.DataFrame, expectations: list, docs: Path, run_date: date) -> dict:
    """One gate of a run: the JSON result and a Data Docs site in the run's folder.

    One site per (run date, suite): GX rebuilds a site from its in-memory stores, so a shared site
    would keep only the last gate's page.
    """
    return run_gate(
        suite,
        data,
        expectations,
        docs_path=docs / f"{suite}.json",
        site_dir=docs / suite,
        run_name=run_date.isoformat(),
    )


def validate_clean_events(source: str, run_date: date, *, first: date | None = None) -> dict:
    """Gate after cleaning: every summary reconciles, quarantined rows are explained, the rebuilt
    partitions are sound."""
    lake, docs, start, owned = _scope(source, run_date, first)
    summaries = summaries_frame(lake, owned)
    _gate(
        "run_summary",
        summaries,
        suites.run_summary(require_rows_each_day=first is None),
        docs,
        run_date,
    )
    _gate(
        "quarantined_rows", read_quarantine(lake, owned), suites.quarantined_rows(), docs, run_date
    )
    events = read_partitions(lake / "events", start=start, end=run_date)
    window_start = datetime.combine(start, time(), tzinfo=UTC)
    window_end = datetime.combine(run_date + timedelta(days=1), time(), tzinfo=UTC)
    window = suites.clean_events(window_start=window_start, window_end=window_end)
    return _gate("clean_events", events, window, docs, run_date)


def validate_sessionized_events(source: str, run_date: date, *, first: date | None = None) -> dict:
    lake, docs, start, _ = _scope(source, run_date, first)
    events = read_partitions(lake / "sessionized_events", start=start, end=run_date)
    return _gate("sessionized_events", events, suites.sessionized_events(), docs, run_date)
