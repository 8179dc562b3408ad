"""Historical load: clean a whole date range of a source in one Spark application.

    python -m jobs.ingest --source online_retail \\
        --path ../shared/data/online_retail/online_retail.csv.gz --from 2010-12-01 --to 2011-12-09

Reads the files under ``--path`` (a file or a folder, any mix of plain and gzip files), cleans,
quarantines and deduplicates them together and rebuilds every event_date partition of the range.
Files in arrival-day folders (the mapping's ``day_folder``, as the daily runs read them) belong to
their arrival day, exactly as if each day's daily run had read them: the load and the daily runs
before and after it hand over without counting a row twice. Rows of any other file (one export)
belong to their event day, rows without a usable time to the file's last event day, whatever the
range: rows of days outside [--from, --to] are left to the load of their day and reported
(``left_to_other_loads`` in the totals), so an export can be loaded in several ranges. So
``etl_run_summary`` accounts for every raw row once. Rerunning the load replaces the same
partitions and summary rows. The whole chain (clean, gate, sessionize, gate) is the
``clickstream_backfill`` DAG: ``python -m dags.run clickstream_backfill ...`` runs it from a shell.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.clean import OtherDays, clean_events
from jobs.raw_files import inspect, split_by_arrival
from pipeline.context import RunContext
from pipeline.contracts import RunSummary
from pipeline.lake import Lake
from pipeline.run_summaries import record_run_summaries
from pipeline.source_mapping import SourceMapping

log = logging.getLogger(__name__)


@dataclass
class Load:
    """What a range load counted: one summary per day of the range, and the export rows it left
    to the loads of other days."""

    summaries: list[RunSummary]
    other_days: OtherDays = field(default_factory=OtherDays)


def ingest_range(
    spark: SparkSession,
    *,
    mapping: SourceMapping,
    path: Path,
    first: date,
    last: date,
    lake: Lake,
    pii_secret: str | None = None,
) -> Load:
    """Clean the files under ``path`` for the days [first, last]; one summary per day.

    Files in arrival-day folders (``mapping.day_folder``) are read as the daily runs of [first,
    last] would read them, together: each belongs to its arrival day, the files of the lateness
    window on either side are read for duplicates and late events but not owned, and the event
    partitions from ``first - lateness_days`` are rebuilt. Folders of other days are left to
    their own runs, so a backfill and the daily runs around it never count a row twice. The
    rows of any other file (one export) belong to their event day, or without a usable time to
    the file's last event day; rows of days outside [first, last] are left to the loads of those
    days (``Load.other_days``), so loading an export in parts counts each row once.
    """
    if last < first:
        raise ValueError(f"to date {last} is before from date {first}")
    L = mapping.lateness_days
    by_day, undated = split_by_arrival(path, mapping)
    read_from, read_to = first - timedelta(days=L), last + timedelta(days=L)
    dated = {d: ps for d, ps in sorted(by_day.items()) if read_from <= d <= read_to}
    files = [inspect(p, mapping, d) for d, ps in dated.items() for p in ps]
    files += [inspect(p, mapping, None) for p in undated]
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    log.info(
        "%s: %d files in day folders %s..%s (%d other day folders left to their own runs), "
        "%d other files; days %s..%s",
        mapping.name, sum(map(len, dated.values())), read_from, read_to,
        len(by_day) - len(dated), len(undated), first, last,
    )  # fmt: skip
    summaries, other = clean_events(
        spark,
        files,
        mapping=mapping,
        lake=lake,
        first_date=first,
        last_date=last,
        owned_dates=days,
        default_run_date=last,
        pii_secret=pii_secret,
        partitions_from=read_from if dated else None,
    )
    for s in summaries:
        arrived = dated.get(date.fromisoformat(s.run_date), [])
        s.raw_files = [str(p) for p in [*arrived, *undated]]
    return Load(summaries, other)


def run(ctx: RunContext, *, path: Path, first: date) -> Load:
    """Clean [first, ctx.run_date] and record the summaries (the backfill DAG's first task)."""
    from jobs.spark import get_spark

    load = ingest_range(
        get_spark(ctx.settings, f"ingest-{ctx.source}"),
        mapping=ctx.mapping,
        path=path,
        first=first,
        last=ctx.run_date,
        lake=ctx.lake,
        pii_secret=ctx.settings.pii_secret,
    )
    record_run_summaries(load.summaries, lake=ctx.lake, warehouse=ctx.warehouse)
    log.info("%s: %s", ctx.source, json.dumps(totals(load)))
    return load


def totals(load: Load) -> dict:
    """Row accounting of a range, summed over its days, and the export rows left to other loads."""
    summaries = load.summaries
    reasons: dict[str, int] = {}
    for s in summaries:
        for r, n in s.quarantined_by_reason.items():
            reasons[r] = reasons.get(r, 0) + n
    return {
        "days": len(summaries),
        "raw_rows": sum(s.raw_rows for s in summaries),
        "clean_rows": sum(s.clean_rows for s in summaries),
        "quarantined_rows": sum(s.quarantined_rows for s in summaries),
        "duplicate_rows": sum(s.duplicate_rows for s in summaries),
        "quarantined_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "left_to_other_loads": load.other_days.as_dict(),
    }


def main(argv: list[str] | None = None) -> None:
    from pipeline.settings import apply_process_env

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True, help="mapping name or path to a mapping file")
    p.add_argument("--path", type=Path, required=True, help="a raw file or a folder of them")
    p.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    p.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    ctx = RunContext.create(a.source, a.last, settings=apply_process_env())
    print(json.dumps(totals(run(ctx, path=a.path, first=a.first)), indent=2))


if __name__ == "__main__":
    main()
