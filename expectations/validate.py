"""Gate entry points the DAG tasks call: read a stage's output, run its suite, raise on failure.

A daily run for D checks D's summary and the partitions it rebuilt ([D-L, D]); a historical load
(``first`` given) checks every day's summary and every partition in [first, D].
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd

from expectations import suites
from expectations.gate import run_gate
from pipeline.context import RunContext
from pipeline.lake import Lake, read_partitions
from pipeline.run_summaries import read_run_summary

SUITES = ["run_summary", "quarantined_rows", "clean_events", "sessionized_events"]


def _scope(ctx: RunContext, first: date | None) -> tuple[date, list[date]]:
    """(first partition checked, run dates whose summaries are checked): a run of the days
    [first, run_date] (first = run_date for a daily run) rebuilds the partitions from
    ``first - lateness_days``, where its files' late events land."""
    first = first or ctx.run_date
    days = [first + timedelta(days=k) for k in range((ctx.run_date - first).days + 1)]
    return first - timedelta(days=ctx.mapping.lateness_days), days


def summaries_frame(lake: Lake, days: list[date]) -> pd.DataFrame:
    rows = []
    for d in days:
        s = read_run_summary(lake, d)
        row = asdict(s) | {"unaccounted_rows": s.unaccounted_rows}
        for k in ("quarantined_by_reason", "partitions_written", "raw_files"):
            row.pop(k)
        rows.append(row)
    return pd.DataFrame(rows)


def read_quarantine(lake: Lake, days: list[date]) -> pd.DataFrame:
    """The quarantined rows the given run dates own (a run owns one contiguous range of dates)."""
    return read_partitions(lake.quarantine, start=min(days), end=max(days))


def _gate(ctx: RunContext, suite: str, data: pd.DataFrame, expectations: list) -> dict:
    """One gate of a run: its JSON result and page in the source's Data Docs site, the site's
    index rewritten (whatever the outcome) and runs past the retention removed."""
    from expectations.data_docs import apply_retention, write_index

    site, day = ctx.data_docs_dir, ctx.run_date.isoformat()
    try:
        return run_gate(
            suite,
            data,
            expectations,
            docs_path=site / "runs" / day / f"{suite}.json",
            site=site,
            run_name=day,
        )
    finally:
        apply_retention(
            site, run_date=ctx.run_date, retention_days=ctx.settings.data_docs_retention_days
        )
        write_index(site, source=ctx.source, suites=SUITES)


def validate_clean_events(ctx: RunContext, *, first: date | None = None) -> dict:
    """Gate after cleaning: every summary reconciles, quarantined rows are explained, the rebuilt
    partitions are sound."""
    start, owned = _scope(ctx, first)
    lake, run_date = ctx.lake, ctx.run_date
    summaries = summaries_frame(lake, owned)
    _gate(ctx, "run_summary", summaries, suites.run_summary(require_rows_each_day=first is None))
    _gate(ctx, "quarantined_rows", read_quarantine(lake, owned), suites.quarantined_rows())
    events = read_partitions(lake.events, start=start, end=run_date)
    window_start = datetime.combine(start, time(), tzinfo=UTC)
    window_end = datetime.combine(run_date + timedelta(days=1), time(), tzinfo=UTC)
    window = suites.clean_events(window_start=window_start, window_end=window_end)
    return _gate(ctx, "clean_events", events, window)


def validate_sessionized_events(ctx: RunContext, *, first: date | None = None) -> dict:
    """Gate after sessionizing: every event has a session and a bot flag, ids stay unique."""
    start, _ = _scope(ctx, first)
    events = read_partitions(ctx.lake.sessionized_events, start=start, end=ctx.run_date)
    return _gate(ctx, "sessionized_events", events, suites.sessionized_events())
