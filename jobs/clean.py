"""Clean one arrival day of a source: parse, validate, quarantine, deduplicate, write the lake.

    python -m jobs.clean --source sample_clickstream --run-date 2026-01-15 [--raw-path DIR]

Late events. An event may arrive up to ``lateness_days`` (L) after its day. The run for date D
rebuilds every event_date partition in [D-L, D] from all arrived raw files in [D-L, D+L]: a partition
X can only receive events from files X..X+L, so each rebuild is complete for what has arrived, a
late event lands in its own partition without wiping it, and rerunning any date (or the whole range)
gives the same lake. Events older than D-L in file D are quarantined as ``too_late``.

Accounting. Each raw row is owned by the run of the day its file arrived. For the rows of file D:
raw = clean + quarantined + duplicate, where a duplicate is a valid row whose event_id appeared
earlier (an earlier file, or earlier in the same file). The summary is written as JSON beside the
lake and to the warehouse table ``etl_run_summary``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.schema import EVENT_COLUMNS
from jobs.settings import get_settings
from jobs.source_mapping import SourceMapping, load_mapping

_OFFSET_SUFFIX = r"(Z|[+-]\d{2}:?\d{2})$"


@dataclass
class RunSummary:
    source: str
    run_date: str
    raw_rows: int
    clean_rows: int
    quarantined_rows: int
    duplicate_rows: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    partitions_written: list[str] = field(default_factory=list)
    raw_files: list[str] = field(default_factory=list)

    @property
    def unaccounted_rows(self) -> int:
        return self.raw_rows - self.clean_rows - self.quarantined_rows - self.duplicate_rows


# ---------------------------------------------------------------------------------------------
# Pure transforms: DataFrame -> DataFrame
# ---------------------------------------------------------------------------------------------


def number_lines(lines: DataFrame) -> DataFrame:
    """Add 1-based ``line_number`` per ``source_file``, in file order.

    ``monotonically_increasing_id`` grows with the file offset within a partition and with the
    partition index across partitions, so ordering by it within a file is line order.
    """
    order = Window.partitionBy("source_file").orderBy("_mono")
    return (
        lines.withColumn("_mono", F.monotonically_increasing_id())
        .withColumn("line_number", F.row_number().over(order).cast("long"))
        .drop("_mono")
    )


def drop_csv_headers(lines: DataFrame, *, mapping: SourceMapping) -> DataFrame:
    """Drop a file's first line when it is the expected header (quotes and BOM ignored)."""
    if mapping.format != "csv":
        return lines
    header = mapping.csv_delimiter.join(mapping.raw_columns)
    first_line = F.regexp_replace(F.regexp_replace("raw_line", '"', ""), "^\ufeff", "")
    is_header = (F.col("line_number") == 1) & (F.trim(first_line) == header)
    return lines.filter(~is_header)


def parse_lines(lines: DataFrame, *, mapping: SourceMapping) -> DataFrame:
    """Parse ``raw_line`` into a struct ``f`` of string fields, one per mapped source column.

    Every field is read as a string, so a bad value never fails the parse: it is judged later, with
    a reason. ``parse_ok`` is false where the line is not valid in the source format.
    """
    fields = [T.StructField(c, T.StringType()) for c in mapping.raw_columns]
    schema = T.StructType([*fields, T.StructField("_corrupt", T.StringType())])
    opts = {"columnNameOfCorruptRecord": "_corrupt", "mode": "PERMISSIVE"}
    if mapping.format == "jsonl":
        parsed = F.from_json("raw_line", schema, opts)
    else:
        opts["sep"] = mapping.csv_delimiter
        ddl = ", ".join(f"`{f.name}` STRING" for f in schema.fields)
        parsed = F.from_csv("raw_line", ddl, opts)
    return lines.withColumn("f", parsed).withColumn(
        "parse_ok",
        F.col("f").isNotNull() & F.col("f._corrupt").isNull() & (F.trim("raw_line") != ""),
    )


def _text(mapping_column: str | None) -> Column:
    if mapping_column is None:
        return F.lit(None).cast("string")
    value = F.trim(F.col(f"f.`{mapping_column}`"))
    return F.when(value != "", value)


def _parse_time(raw: Column, *, fmt: str, tz: str) -> Column:
    if fmt == "epoch_ms":
        return F.timestamp_millis(raw.try_cast("double").cast("long"))
    if fmt == "epoch_s":
        return F.timestamp_seconds(raw.try_cast("double").cast("long"))
    parsed = raw.try_cast("timestamp") if fmt == "iso8601" else F.try_to_timestamp(raw, F.lit(fmt))
    if tz == "UTC":
        return parsed
    # Only naive times are in the source's zone; times with an explicit offset are already exact.
    return F.when(raw.rlike(_OFFSET_SUFFIX), parsed).otherwise(F.to_utc_timestamp(parsed, tz))


def normalize_events(
    parsed: DataFrame,
    *,
    mapping: SourceMapping,
    window_start: datetime,
    window_end: datetime,
) -> DataFrame:
    """Map parsed fields to the canonical event columns and give each invalid row a ``reason``.

    ``window_start``/``window_end`` (UTC) bound the event times this run accepts: earlier is
    ``too_late``, at or after the end is ``future_event``. ``reason`` is null for valid rows.
    """
    c = mapping.columns
    raw_time = _text(c.event_time)
    event_time = _parse_time(raw_time, fmt=mapping.timestamp.format, tz=mapping.timestamp.timezone)

    raw_type = _text(c.event_type)
    if c.event_type is None:
        event_type = F.lit(mapping.default_event_type)
    else:
        names = F.create_map(*[F.lit(x) for kv in mapping.event_types.items() for x in kv])
        event_type = names[raw_type]

    raw_price, raw_qty = _text(c.price), _text(c.quantity)
    price = raw_price.try_cast("double")
    qty_double = raw_qty.try_cast("double")
    is_return = F.lit(False)
    if mapping.returns.negative_quantity:
        is_return = is_return | (qty_double < 0)
    if mapping.returns.column and mapping.returns.prefix:
        is_return = is_return | F.coalesce(
            _text(mapping.returns.column).startswith(mapping.returns.prefix), F.lit(False)
        )
    event_type = F.when(is_return, F.lit("return")).otherwise(event_type)
    quantity = F.when(is_return, F.abs(qty_double)).otherwise(qty_double).cast("long")

    event_id = _text(c.event_id) if c.event_id else F.substring(F.sha2("raw_line", 256), 1, 32)
    user_id = _text(c.user_id)
    if c.user_id and mapping.format == "csv":
        # Spreadsheet exports write integer ids as floats ("17850.0").
        user_id = F.regexp_replace(user_id, r"\.0+$", "")

    events = parsed.select(
        "arrival_date",
        "source_file",
        "line_number",
        "raw_line",
        "parse_ok",
        event_id.alias("event_id"),
        user_id.alias("user_id"),
        event_time.alias("event_time"),
        event_type.alias("event_type"),
        _text(c.item_id).alias("item_id"),
        _text(c.category).alias("category"),
        _text(c.item_text).alias("item_text"),
        price.alias("price"),
        quantity.alias("quantity"),
        _text(c.session_id).alias("session_id"),
        raw_time.alias("_raw_time"),
        raw_price.alias("_raw_price"),
        raw_qty.alias("_raw_qty"),
        raw_type.alias("_raw_type"),
    )
    start = F.lit(window_start).cast("timestamp")
    end = F.lit(window_end).cast("timestamp")
    reason = (
        F.when(~F.col("parse_ok"), "malformed")
        .when(F.col("user_id").isNull(), "missing_user_id")
        .when(F.col("event_id").isNull(), "missing_event_id")
        .when(F.col("item_id").isNull(), "missing_item_id")
        .when(F.col("event_time").isNull(), "bad_timestamp")
        .when(F.col("event_type").isNull(), "unknown_event_type")
        .when(
            (F.col("_raw_price").isNotNull() & F.col("price").isNull())
            | (F.col("_raw_qty").isNotNull() & F.col("quantity").isNull()),
            "bad_number",
        )
        .when((F.col("price") < 0) | F.isnan("price"), "negative_price")
        .when(F.col("event_time") >= end, "future_event")
        .when(F.col("event_time") < start, "too_late")
    )
    return (
        events.withColumn("reason", reason)
        .withColumn("event_date", F.to_date("event_time"))
        .drop("_raw_time", "_raw_price", "_raw_qty", "_raw_type")
    )


def mark_duplicates(events: DataFrame) -> DataFrame:
    """Flag valid rows whose event_id appeared before (earlier arrival, then earlier line)."""
    # Only valid rows compete: a quarantined copy must not turn the valid one into a duplicate.
    valid = F.col("reason").isNull()
    first = Window.partitionBy("event_id", valid).orderBy(
        "arrival_date", "source_file", "line_number"
    )
    rank = F.when(valid, F.row_number().over(first))
    return events.withColumn("is_duplicate", F.coalesce(rank > 1, F.lit(False)))


def redact_pii(raw_line: Column, *, mapping: SourceMapping) -> Column:
    """Mask personal values inside a raw line before it is kept in quarantine."""
    for name in mapping.pii_columns:
        if mapping.format == "jsonl":
            pattern = rf'("{name}"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}}]*)'
            raw_line = F.regexp_replace(raw_line, pattern, r'$1"<redacted>"')
    if mapping.format == "csv" and mapping.pii_columns:
        raise NotImplementedError("PII columns in CSV sources are not supported yet")
    return raw_line


# ---------------------------------------------------------------------------------------------
# I/O
# ---------------------------------------------------------------------------------------------


def day_files(raw_root: Path, mapping: SourceMapping, day: date) -> list[Path]:
    folder = raw_root / day.strftime(mapping.day_folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")))


def read_raw_lines(spark: SparkSession, files_by_day: dict[date, list[Path]]) -> DataFrame:
    """One row per raw line: arrival_date, source_file, line_number, raw_line."""
    frames = []
    for day, files in sorted(files_by_day.items()):
        if not files:
            continue
        lines = spark.read.text([str(p) for p in files]).select(
            F.lit(day).alias("arrival_date"),
            F.col("_metadata.file_path").alias("source_file"),
            F.col("value").alias("raw_line"),
        )
        frames.append(lines)
    if not frames:
        schema = "arrival_date date, source_file string, raw_line string"
        return number_lines(spark.createDataFrame([], schema))
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return number_lines(out)


def clean_day(
    spark: SparkSession,
    *,
    mapping: SourceMapping,
    raw_root: Path,
    lake: Path,
    run_date: date,
) -> RunSummary:
    """Clean the files that arrived on ``run_date`` and rebuild the partitions they can touch."""
    lateness = timedelta(days=mapping.lateness_days)
    own_files = day_files(raw_root, mapping, run_date)
    if not own_files:
        folder = raw_root / run_date.strftime(mapping.day_folder)
        raise FileNotFoundError(
            f"{mapping.name}: no raw files for {run_date} in {folder} (is the export late?)"
        )
    files_by_day = {
        d: day_files(raw_root, mapping, d)
        for d in (
            run_date + timedelta(days=k)
            for k in range(-mapping.lateness_days, 1 + mapping.lateness_days)
        )
    }
    window_start = datetime.combine(run_date - lateness, time(), tzinfo=UTC)
    window_end = datetime.combine(run_date + timedelta(days=1), time(), tzinfo=UTC)

    lines = drop_csv_headers(read_raw_lines(spark, files_by_day), mapping=mapping)
    parsed = parse_lines(lines, mapping=mapping)
    events = normalize_events(
        parsed, mapping=mapping, window_start=window_start, window_end=window_end
    )
    classified = mark_duplicates(events).cache()
    try:
        clean = classified.filter(F.col("reason").isNull() & ~F.col("is_duplicate"))
        written = write_event_partitions(
            clean.select(*EVENT_COLUMNS, "event_date"),
            lake / "events",
            dates=[run_date - timedelta(days=k) for k in range(mapping.lateness_days, -1, -1)],
        )
        own = classified.filter(F.col("arrival_date") == F.lit(run_date))
        quarantine = own.filter(F.col("reason").isNotNull()).select(
            F.lit(mapping.name).alias("source"),
            "source_file",
            "line_number",
            redact_pii(F.col("raw_line"), mapping=mapping).alias("raw_line"),
            "reason",
        )
        quarantine_dir = lake / "quarantine" / f"ingest_date={run_date.isoformat()}"
        quarantine.coalesce(1).write.mode("overwrite").parquet(str(quarantine_dir))
        summary = summarize(own, source=mapping.name, run_date=run_date)
        summary.partitions_written = written
        summary.raw_files = [str(p) for p in own_files]
    finally:
        classified.unpersist()
    write_summary(summary, lake)
    return summary


def summarize(own: DataFrame, *, source: str, run_date: date) -> RunSummary:
    """Count the rows a run owns by outcome."""
    counts = (
        own.groupBy(
            F.when(F.col("reason").isNotNull(), F.col("reason"))
            .when(F.col("is_duplicate"), "_duplicate")
            .otherwise("_clean")
            .alias("outcome")
        )
        .count()
        .collect()
    )
    by = {r["outcome"]: r["count"] for r in counts}
    reasons = {k: v for k, v in sorted(by.items()) if not k.startswith("_")}
    return RunSummary(
        source=source,
        run_date=run_date.isoformat(),
        raw_rows=sum(by.values()),
        clean_rows=by.get("_clean", 0),
        quarantined_rows=sum(reasons.values()),
        duplicate_rows=by.get("_duplicate", 0),
        quarantined_by_reason=reasons,
    )


def write_event_partitions(events: DataFrame, path: Path, *, dates: list[date]) -> list[str]:
    """Replace exactly the ``event_date`` partitions in ``dates`` (an empty one is removed)."""
    wanted = [d.isoformat() for d in dates]
    rows = events.filter(F.col("event_date").isin(dates))
    (
        rows.repartition("event_date")
        .sortWithinPartitions("user_id", "event_time", "event_id")
        .write.mode("overwrite")
        .partitionBy("event_date")
        .parquet(str(path))
    )
    present = {r[0].isoformat() for r in rows.select("event_date").distinct().collect()}
    for d in set(wanted) - present:
        shutil.rmtree(path / f"event_date={d}", ignore_errors=True)
    return sorted(present)


def summary_path(lake: Path, run_date: date | str) -> Path:
    day = run_date if isinstance(run_date, str) else run_date.isoformat()
    return lake / "_runs" / f"run_date={day}" / "summary.json"


def write_summary(summary: RunSummary, lake: Path) -> Path:
    path = summary_path(lake, summary.run_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(summary), indent=2))
    return path


def read_summary(lake: Path, run_date: date | str) -> RunSummary:
    return RunSummary(**json.loads(summary_path(lake, run_date).read_text()))


def run(source: str, run_date: date, *, raw_path: Path | None = None) -> RunSummary:
    """Entry point for the DAG task and the CLI."""
    from jobs.spark import get_spark

    settings = get_settings()
    mapping = load_mapping(source)
    summary = clean_day(
        get_spark(f"clean-{mapping.name}"),
        mapping=mapping,
        raw_root=raw_path or settings.raw_dir / mapping.name,
        lake=settings.source_lake(mapping.name),
        run_date=run_date,
    )
    from jobs.warehouse import write_run_summary

    write_run_summary(summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True, help="mapping name or path to a mapping file")
    p.add_argument("--run-date", type=date.fromisoformat, required=True)
    p.add_argument("--raw-path", type=Path, help="raw files root (default: data/raw/<source>)")
    a = p.parse_args(argv)
    s = run(a.source, a.run_date, raw_path=a.raw_path)
    print(json.dumps(asdict(s), indent=2))


if __name__ == "__main__":
    main()
