"""Clean raw files of a source: parse, validate, quarantine, deduplicate, write the lake.

    python -m jobs.clean --source sample_clickstream --run-date 2026-01-15 [--raw-path DIR]

One core, ``clean_events``, serves two callers:
- the daily run (``clean_day``) for the files that arrived on one day;
- the historical load (``jobs.ingest``) for a whole date range in one Spark application.

Late events. An event may arrive up to ``lateness_days`` (L) after its day. The daily run for D
rebuilds every event_date partition in [D-L, D] from all arrived raw files in [D-L, D+L]: a partition
X can only receive events from files X..X+L, so each rebuild is complete for what has arrived, a late
event lands in its own partition without wiping it, and rerunning any date (or the whole range)
gives the same lake. Events older than D-L in D's file are quarantined as ``too_late``.

Accounting. Every raw row is owned by one run date: the day its file arrived (the file's day
folder; the daily run and a historical load of day folders alike, so they hand over without
counting a row twice), or for a file outside day folders (one export) its event day, and for its
rows without a usable time the file's last event day. Ownership never depends on the load's range,
so an export loaded in several ranges counts each row once: rows of days outside a load are left
to the load of their day (``OtherDays``, logged and in the load's totals). For the rows a date
owns: raw = clean + quarantined + duplicate, where a duplicate is a valid row whose event_id
appeared earlier (earlier arrival, file or line). Summaries go to JSON beside the lake and to the
warehouse tables ``etl_run_summary`` and ``etl_quarantine_counts``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.parse import SORT_LINES_BELOW_BYTES, number_lines, parse_lines, parse_time
from jobs.partitions import write_partitions
from jobs.privacy import hmac_sha256, mask_free_text, redact_pii
from jobs.raw_files import RawFile, day_files, inspect
from pipeline.context import RunContext
from pipeline.contracts import EVENT_COLUMNS, RunSummary
from pipeline.lake import Lake
from pipeline.run_summaries import record_run_summaries
from pipeline.source_mapping import SourceMapping

log = logging.getLogger(__name__)


class MissingExportError(FileNotFoundError):
    """The day's raw files have not arrived (yet)."""


class NothingInRangeError(ValueError):
    """A load of exports whose rows all belong to days outside its range: a wrong range."""


@dataclass(frozen=True)
class OtherDays:
    """Rows of undated files (one export) that belong to days outside a load's range: the load of
    their day counts them, this one leaves them alone (a range of an export loaded in parts)."""

    rows: int = 0
    first_day: date | None = None
    last_day: date | None = None

    def as_dict(self) -> dict:
        days = f"{self.first_day}..{self.last_day}" if self.rows else None
        return {"rows": self.rows, "days": days}


# ---------------------------------------------------------------------------------------------
# Pure transforms: DataFrame -> DataFrame
# ---------------------------------------------------------------------------------------------


# Leading and trailing whitespace of any kind: tabs, non-breaking and other Unicode spaces, and the
# zero-width ones (an id made only of them is missing, not a user). The characters of Unicode's
# White_Space property (Java's ``(?U)\s``, checked in tests/jobs/test_clean.py) plus the zero-width
# space and the BOM, trimmed as a set (``btrim``, a plain scan: half the time of the equivalent
# regex).
EDGE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000\u200b\ufeff"
)


def mapped_text(
    parsed: DataFrame, columns: list[str]
) -> tuple[DataFrame, Callable[[str | None], Column]]:
    """``parsed`` with each mapped field of ``f`` as trimmed text (empty or whitespace-only values
    are null), and the function that names a field's column (an unmapped field reads as null).

    Each field is trimmed once, in projections of its own: written inline, the trimmed value was
    computed again wherever a rule read it (the parsers of each time format, the number checks,
    the nested-value check): 49 trims a row for the sample source, a third of the classify step.
    """
    index = {name: i for i, name in enumerate(columns)}
    trimmed = parsed.select(
        "*",
        *[F.btrim(F.col(f"f.`{n}`"), F.lit(EDGE_SPACE)).alias(f"_t{i}") for n, i in index.items()],
    )
    fields = trimmed.select(
        *parsed.columns,
        *[F.when(F.col(f"_t{i}") != "", F.col(f"_t{i}")).alias(f"_v{i}") for i in index.values()],
    )

    def text(name: str | None) -> Column:
        return F.lit(None).cast("string") if name is None else F.col(f"_v{index[name]}")

    return fields, text


def normalize_events(
    parsed: DataFrame,
    *,
    mapping: SourceMapping,
    window_start: datetime,
    window_end: datetime,
    pii_secret: str | None = None,
) -> DataFrame:
    """Map parsed fields to the canonical event columns and give each invalid row a ``reason``.

    ``window_start``/``window_end`` (UTC) bound the event times accepted from undated files: earlier
    is ``too_late``, at or after the end is ``future_event`` (such a row belongs to its event day,
    outside the load, so only the load of that day counts it, valid). A row with an arrival date
    D is judged by D's own window, [D - lateness_days, D + 1), whichever run reads it, so a rerun
    that reads later files, or a backfill, treats each file as its daily run does. ``reason`` is
    null for valid rows.
    ``run_date`` is the date that owns the row: its arrival date, or for rows of an undated file
    its event date; null for an undated row without a usable time (``classify`` gives it the
    file's last event day).
    """
    c = mapping.columns
    parsed, text = mapped_text(parsed, mapping.raw_columns)
    raw_time = text(c.event_time)
    event_time = parse_time(
        raw_time, formats=mapping.timestamp.formats, tz=mapping.timestamp.timezone
    )

    if c.event_type is None:
        event_type = F.lit(mapping.default_event_type)
    else:
        names = F.create_map(*[F.lit(x) for kv in mapping.event_types.items() for x in kv])
        event_type = names[text(c.event_type)]

    raw_price, raw_qty = text(c.price), text(c.quantity)
    price = raw_price.try_cast("double")
    qty_double = raw_qty.try_cast("double")
    is_return = F.lit(False)
    if mapping.returns.negative_quantity:
        is_return = is_return | F.coalesce(qty_double < 0, F.lit(False))
    if mapping.returns.column and mapping.returns.prefix:
        is_return = is_return | F.coalesce(
            text(mapping.returns.column).startswith(mapping.returns.prefix), F.lit(False)
        )
    event_type = F.when(is_return, F.lit("return")).otherwise(event_type)
    quantity = F.when(is_return, F.abs(qty_double)).otherwise(qty_double)

    event_id = (
        text(c.event_id) if c.event_id else F.substring(F.sha2(F.col("raw_line"), 256), 1, 32)
    )
    user_id = text(c.user_id)
    if mapping.format == "csv":
        # Spreadsheet exports write integer ids as floats ("17850.0").
        user_id = F.regexp_replace(user_id, r"\.0+$", "")
    if mapping.pii_hash_columns:
        if not pii_secret:
            raise ValueError(
                f"{mapping.name}: PIPELINE_PII_SECRET must be set: the mapping hashes "
                f"personal columns {mapping.pii_hash_columns}"
            )
        secret = pii_secret.encode()
        if c.user_id in mapping.pii_hash_columns:
            user_id = hmac_sha256(user_id, secret)
        if c.event_id in mapping.pii_hash_columns:
            event_id = hmac_sha256(event_id, secret)

    scalar_fields = [text(x) for x in mapping.raw_columns]
    nested = F.lit(False)
    if mapping.format == "jsonl":
        nested = F.greatest(
            *[F.coalesce(v.rlike(r"^[\[{].*[\]}]$"), F.lit(False)) for v in scalar_fields]
        )

    events = parsed.select(
        "arrival_date",
        "source_file",
        "line_number",
        "raw_line",
        "parse_ok",
        "is_header",
        "p",
        event_id.alias("event_id"),
        user_id.alias("user_id"),
        event_time.alias("event_time"),
        event_type.alias("event_type"),
        text(c.item_id).alias("item_id"),
        mask_free_text(text(c.category)).alias("category"),
        mask_free_text(text(c.item_text)).alias("item_text"),
        price.alias("price"),
        quantity.alias("_quantity"),
        text(c.session_id).alias("session_id"),
        nested.alias("_nested"),
        raw_price.alias("_raw_price"),
        raw_qty.alias("_raw_qty"),
    )
    # A row of a dated file (an arrival day D) is judged as D's daily run judges it, whichever run
    # reads it: [D - lateness_days, D + 1). Rows of undated files (one export) use the run's window.
    arrival = F.col("arrival_date")
    start = F.coalesce(
        F.date_sub(arrival, mapping.lateness_days).cast("timestamp"),
        F.lit(window_start).cast("timestamp"),
    )
    end = F.coalesce(F.date_add(arrival, 1).cast("timestamp"), F.lit(window_end).cast("timestamp"))
    not_finite = lambda x: F.isnan(x) | (F.abs(x) == float("inf"))  # noqa: E731
    reason = (
        F.when(~F.is_valid_utf8("raw_line"), "bad_encoding")
        .when(F.col("is_header"), "header_line")
        .when(~F.col("parse_ok"), "malformed")
        .when(F.col("_nested"), "nested_value")
        .when(F.col("user_id").isNull(), "missing_user_id")
        .when(F.col("event_id").isNull(), "missing_event_id")
        .when(F.col("item_id").isNull(), "missing_item_id")
        .when(F.col("event_time").isNull(), "bad_timestamp")
        .when(F.col("event_type").isNull(), "unknown_event_type")
        .when(
            (
                F.col("_raw_price").isNotNull()
                & (F.col("price").isNull() | not_finite(F.col("price")))
            )
            | (
                F.col("_raw_qty").isNotNull()
                & (F.col("_quantity").isNull() | not_finite(F.col("_quantity")))
            ),
            "bad_number",
        )
        .when(F.col("price") < 0, "negative_price")
        .when(F.col("event_time") >= end, "future_event")
        .when(F.col("event_time") < start, "too_late")
    )
    event_date = F.to_date("event_time")
    owner = F.coalesce(F.col("arrival_date"), event_date)
    return (
        events.withColumn("reason", reason)
        .withColumn("quantity", F.when(F.col("reason").isNull(), F.col("_quantity").cast("long")))
        .withColumn("event_date", event_date)
        .withColumn("run_date", owner)
        .drop("_quantity", "_nested", "_raw_price", "_raw_qty")
    )


def mark_duplicates(events: DataFrame) -> DataFrame:
    """Flag valid rows whose event_id appeared before (earlier run date, file, then line)."""
    # Only valid rows compete: a quarantined copy must not turn the valid one into a duplicate.
    valid = F.col("reason").isNull()
    first = Window.partitionBy("event_id", valid).orderBy("run_date", "source_file", "line_number")
    rank = F.when(valid, F.row_number().over(first))
    return events.withColumn("is_duplicate", F.coalesce(rank > 1, F.lit(False)))


# ---------------------------------------------------------------------------------------------
# I/O
# ---------------------------------------------------------------------------------------------


def read_raw_lines(
    spark: SparkSession, files: list[RawFile]
) -> list[tuple[tuple[str, ...] | None, DataFrame]]:
    """Raw lines grouped by CSV header: [(header, DataFrame(arrival_date, source_file, line_number, raw_line))]."""
    # gzip text is ~8x its file size
    raw_bytes = sum(f.path.stat().st_size * (8 if f.path.suffix == ".gz" else 1) for f in files)
    sort = raw_bytes < SORT_LINES_BELOW_BYTES
    groups: dict[tuple, list[RawFile]] = {}
    for f in files:
        groups.setdefault((f.columns, f.arrival_date), []).append(f)
    by_header: dict[tuple[str, ...] | None, list[DataFrame]] = {}
    for (header, arrival), group in groups.items():
        by_header.setdefault(header, []).append(
            spark.read.text([str(f.path) for f in group]).select(
                F.lit(arrival).cast("date").alias("arrival_date"),
                F.col("_metadata.file_path").alias("source_file"),
                F.col("value").alias("raw_line"),
            )
        )
    # Lines are numbered once per header, over every arrival day's files together: one count of
    # the chunks (or one sort), where numbering each day apart cost a pass of its own per day.
    return [
        (header, number_lines(union_all(frames), sort=sort)) for header, frames in by_header.items()
    ]


def union_all(frames: list[DataFrame]) -> DataFrame:
    df = frames[0]
    for f in frames[1:]:
        df = df.unionByName(f)
    return df


def classify(
    spark: SparkSession,
    files: list[RawFile],
    *,
    mapping: SourceMapping,
    window_start: datetime,
    window_end: datetime,
    default_run_date: date | None = None,
    pii_secret: str | None = None,
) -> DataFrame:
    """Every raw line with its canonical columns, ``reason``, ``run_date`` and ``is_duplicate``.

    A row of an undated file without a usable time belongs to the file's last event day (the day
    the export was cut), else (no row of the file has a time) to ``default_run_date``.
    """
    parts = []
    for header, lines in read_raw_lines(spark, files):
        parsed = parse_lines(lines, mapping=mapping, columns=header)
        events = normalize_events(
            parsed,
            mapping=mapping,
            window_start=window_start,
            window_end=window_end,
            pii_secret=pii_secret,
        )
        # Quarantined lines are kept as valid text (invalid bytes become U+FFFD). Valid rows need
        # no raw text downstream: dropping it keeps the cached frame small.
        line = mask_free_text(
            redact_pii(F.make_valid_utf8("raw_line"), mapping=mapping, columns=header)
        )
        kept = F.when(F.col("reason").isNotNull(), line)
        parts.append(events.withColumn("quarantine_line", kept).drop("p", "raw_line"))
    if not parts:
        raise ValueError(f"{mapping.name}: no raw files to clean")
    df = union_all(parts)
    if any(f.arrival_date is None for f in files):
        file_last_day = F.max("event_date").over(Window.partitionBy("source_file"))
        df = df.withColumn(
            "run_date",
            F.coalesce("run_date", file_last_day, F.lit(default_run_date).cast("date")),
        )
    return mark_duplicates(df)


def summarize(owned: DataFrame, *, source: str, dates: list[date]) -> list[RunSummary]:
    """Count the rows each date owns by outcome (a date with no rows gets a zero summary)."""
    outcome = (
        F.when(F.col("reason").isNotNull(), F.col("reason"))
        .when(F.col("is_duplicate"), "_duplicate")
        .otherwise("_clean")
    )
    counts: dict[date, dict[str, int]] = {d: {} for d in dates}
    for r in owned.groupBy("run_date", outcome.alias("outcome")).count().collect():
        counts[r["run_date"]][r["outcome"]] = r["count"]
    out = []
    for d in dates:
        by = counts[d]
        reasons = {k: v for k, v in sorted(by.items()) if not k.startswith("_")}
        out.append(
            RunSummary(
                source=source,
                run_date=d.isoformat(),
                raw_rows=sum(by.values()),
                clean_rows=by.get("_clean", 0),
                quarantined_rows=sum(reasons.values()),
                duplicate_rows=by.get("_duplicate", 0),
                quarantined_by_reason=reasons,
            )
        )
    return out


def _other_days(
    classified: DataFrame, files: list[RawFile], *, mapping: SourceMapping, owned_dates: list[date]
) -> OtherDays:
    """The undated files' rows that belong to days outside ``owned_dates``. A load of exports
    only, none of whose rows it owns, is a wrong range: ``NothingInRangeError``, before any write."""
    if all(f.arrival_date is not None for f in files):
        return OtherDays()
    mine = F.col("run_date").isin(owned_dates)
    owned, *elsewhere = (
        classified.filter(F.col("arrival_date").isNull())
        .agg(
            F.count(F.when(mine, 1)),
            F.count(F.when(~mine, 1)),
            F.min(F.when(~mine, F.col("run_date"))),
            F.max(F.when(~mine, F.col("run_date"))),
        )
        .first()
    )
    other = OtherDays(*elsewhere)
    if owned == 0 and other.rows and all(f.arrival_date is None for f in files):
        raise NothingInRangeError(
            f"{mapping.name}: none of the {other.rows:,} rows of "
            f"{', '.join(f.path.name for f in files)} belongs to {owned_dates[0]}.."
            f"{owned_dates[-1]}: their days are {other.first_day}..{other.last_day}. "
            "Check from_date and to_date; nothing was written"
        )
    return other


def clean_events(
    spark: SparkSession,
    files: list[RawFile],
    *,
    mapping: SourceMapping,
    lake: Lake,
    first_date: date,
    last_date: date,
    owned_dates: list[date],
    default_run_date: date | None = None,
    pii_secret: str | None = None,
    partitions_from: date | None = None,
) -> tuple[list[RunSummary], OtherDays]:
    """Clean ``files``; rebuild event partitions [partitions_from or first_date, last_date];
    summarize owned dates. [first_date, last_date] is the window of undated files' rows.

    Writes the lake (events, quarantine) and returns the summaries and the undated files' rows
    owned by other dates; recording the summaries is the caller's one write
    (``pipeline.run_summaries.record_run_summaries``).
    """
    window_start = datetime.combine(first_date, time(), tzinfo=UTC)
    window_end = datetime.combine(last_date + timedelta(days=1), time(), tzinfo=UTC)
    classified = classify(
        spark,
        files,
        mapping=mapping,
        window_start=window_start,
        window_end=window_end,
        default_run_date=default_run_date,
        pii_secret=pii_secret,
    ).persist()
    try:
        other = _other_days(classified, files, mapping=mapping, owned_dates=owned_dates)
        clean = classified.filter(F.col("reason").isNull() & ~F.col("is_duplicate"))
        span_start = partitions_from or first_date
        span = [span_start + timedelta(days=k) for k in range((last_date - span_start).days + 1)]
        log.info("%s: writing clean events for %s..%s", mapping.name, span_start, last_date)
        written = write_partitions(
            clean.select(*EVENT_COLUMNS, "event_date"), lake.events, column="event_date", dates=span
        )
        owned = classified.filter(F.col("run_date").isin(owned_dates))
        quarantine = owned.filter(F.col("reason").isNotNull()).select(
            F.lit(mapping.name).alias("source"),
            "source_file",
            "line_number",
            F.col("quarantine_line").alias("raw_line"),
            "reason",
            F.col("run_date").alias("ingest_date"),
        )
        log.info("%s: writing quarantined rows", mapping.name)
        write_partitions(quarantine, lake.quarantine, column="ingest_date", dates=owned_dates)
        summaries = summarize(owned, source=mapping.name, dates=owned_dates)
    finally:
        classified.unpersist()
    if other.rows:
        log.warning(
            "%s: %d rows of the export belong to days outside %s..%s (%s..%s): the loads of "
            "those days count them, not this one",
            mapping.name, other.rows, owned_dates[0], owned_dates[-1], other.first_day,
            other.last_day,
        )  # fmt: skip
    for s in summaries:
        s.partitions_written = written
    return summaries, other


def clean_day(
    spark: SparkSession,
    *,
    mapping: SourceMapping,
    raw_root: Path,
    lake: Lake,
    run_date: date,
    pii_secret: str | None = None,
) -> RunSummary:
    """The daily run: the files that arrived on ``run_date`` and the partitions they can touch."""
    L = mapping.lateness_days
    if not day_files(raw_root, mapping, run_date):
        folder = raw_root / run_date.strftime(mapping.day_folder)
        raise MissingExportError(
            f"{mapping.name}: no raw files for {run_date} in {folder} (is the export late?)"
        )
    files = [
        inspect(p, mapping, d)
        for d in (run_date + timedelta(days=k) for k in range(-L, L + 1))
        for p in day_files(raw_root, mapping, d)
    ]
    log.info(
        "%s %s: %d raw files in the late-event window %s..%s",
        mapping.name, run_date, len(files), run_date - timedelta(days=L), run_date + timedelta(days=L),
    )  # fmt: skip
    (summary,), _ = clean_events(
        spark,
        files,
        mapping=mapping,
        lake=lake,
        first_date=run_date - timedelta(days=L),
        last_date=run_date,
        owned_dates=[run_date],
        pii_secret=pii_secret,
    )
    summary.raw_files = [str(f.path) for f in files if f.arrival_date == run_date]
    return summary


def run(ctx: RunContext, *, raw_path: Path | None = None) -> RunSummary:
    """Entry point for the DAG task and the CLI: clean the day, record its summary once."""
    from jobs.spark import get_spark

    summary = clean_day(
        get_spark(ctx.settings, f"clean-{ctx.source}"),
        mapping=ctx.mapping,
        raw_root=raw_path or ctx.raw_root,
        lake=ctx.lake,
        run_date=ctx.run_date,
        pii_secret=ctx.settings.pii_secret,
    )
    record_run_summaries([summary], lake=ctx.lake, warehouse=ctx.warehouse)
    log.info(
        "%s %s: %d raw rows = %d clean + %d quarantined + %d duplicate (%d unaccounted)",
        summary.source, summary.run_date, summary.raw_rows, summary.clean_rows,
        summary.quarantined_rows, summary.duplicate_rows, summary.unaccounted_rows,
    )  # fmt: skip
    return summary


def main(argv: list[str] | None = None) -> None:
    from pipeline.settings import apply_process_env

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True, help="mapping name or path to a mapping file")
    p.add_argument("--run-date", type=date.fromisoformat, required=True)
    p.add_argument("--raw-path", type=Path, help="raw files root (default: data/raw/<source>)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    ctx = RunContext.create(a.source, a.run_date, settings=apply_process_env())
    s = run(ctx, raw_path=a.raw_path)
    print(json.dumps(asdict(s), indent=2))


if __name__ == "__main__":
    main()
