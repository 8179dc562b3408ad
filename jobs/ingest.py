"""Historical load: a whole date range of a source in one Spark application.

    python -m jobs.ingest --source online_retail \\
        --path ../shared/data/online_retail/online_retail.csv.gz --from 2010-12-01 --to 2011-12-09

Reads every file under ``--path`` (a file or a folder, any mix of plain and gzip files), cleans,
quarantines and deduplicates them together, rebuilds every event_date partition in [from, to],
sessionizes the range, and runs the Great Expectations gates. Each row is owned by its event day
(rows without a usable time by the ``--to`` day), so ``etl_run_summary`` accounts for every raw row
once. Rerunning the load replaces the same partitions and summary rows.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.clean import RunSummary, clean_events
from jobs.raw_files import inspect, list_files
from jobs.settings import get_settings
from jobs.source_mapping import SourceMapping, load_mapping


def ingest_range(
    spark: SparkSession, *, mapping: SourceMapping, path: Path, first: date, last: date, lake: Path
) -> list[RunSummary]:
    """Clean every file under ``path`` for event dates [first, last]."""
    files = [inspect(p, mapping, None) for p in list_files(path)]
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    summaries = clean_events(
        spark,
        files,
        mapping=mapping,
        lake=lake,
        first_date=first,
        last_date=last,
        owned_dates=days,
        default_run_date=last,
    )
    for s in summaries:
        s.raw_files = [str(f.path) for f in files]
    return summaries


def run(source: str, path: Path, first: date, last: date) -> list[RunSummary]:
    """Clean the range and record the summaries (the DAG's first task)."""
    from jobs.spark import get_spark
    from jobs.warehouse import write_run_summaries

    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    mapping = load_mapping(source)
    summaries = ingest_range(
        get_spark(f"ingest-{mapping.name}"),
        mapping=mapping,
        path=path,
        first=first,
        last=last,
        lake=get_settings().source_lake(mapping.name),
    )
    write_run_summaries(summaries)
    return summaries


def load(source: str, path: Path, first: date, last: date) -> dict:
    """Clean -> gate -> sessionize -> gate for the range, in this process's one Spark session."""
    from expectations.validate import validate_clean_events, validate_sessionized_events
    from jobs import sessionize

    timings = {}
    t0 = time.time()
    summaries = run(source, path, first, last)
    timings["clean_s"] = time.time() - t0
    t = time.time()
    validate_clean_events(source, last, first=first)
    timings["validate_clean_s"] = time.time() - t
    t = time.time()
    sessionize.run(source, last, first=first)
    timings["sessionize_s"] = time.time() - t
    t = time.time()
    validate_sessionized_events(source, last, first=first)
    timings["validate_sessions_s"] = time.time() - t
    reasons: dict[str, int] = {}
    for s in summaries:
        for r, n in s.quarantined_by_reason.items():
            reasons[r] = reasons.get(r, 0) + n
    return {
        "source": source,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "raw_rows": sum(s.raw_rows for s in summaries),
        "clean_rows": sum(s.clean_rows for s in summaries),
        "quarantined_rows": sum(s.quarantined_rows for s in summaries),
        "duplicate_rows": sum(s.duplicate_rows for s in summaries),
        "quarantined_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "seconds": {k: round(v, 1) for k, v in timings.items()}
        | {"total_s": round(time.time() - t0, 1)},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True, help="mapping name or path to a mapping file")
    p.add_argument("--path", type=Path, required=True, help="a raw file or a folder of them")
    p.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    p.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    a = p.parse_args(argv)
    print(json.dumps(load(a.source, a.path, a.first, a.last), indent=2))


if __name__ == "__main__":
    main()
