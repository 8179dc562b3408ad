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

Accounting. Every raw row is owned by one run date: the day its file arrived (daily runs) or its
event day (historical loads; rows without a usable time belong to the load's last day). For the rows
a date owns: raw = clean + quarantined + duplicate, where a duplicate is a valid row whose event_id
appeared earlier (earlier arrival, file or line). Summaries go to JSON beside the lake and to the
warehouse tables ``etl_run_summary`` and ``etl_quarantine_counts``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time as wallclock
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.raw_files import RawFile, day_files, inspect
from jobs.schema import EVENT_COLUMNS
from jobs.settings import get_settings
from jobs.source_mapping import SourceMapping, load_mapping

_OFFSET_SUFFIX = r"(Z|[+-]\d{2}:?\d{2})$"
REDACTED = "<redacted>"


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
    # Filled by the sessionize step: flagged bot users and their events in this date's partition.
    bot_users: int = 0
    bot_events: int = 0

    @property
    def unaccounted_rows(self) -> int:
        return self.raw_rows - self.clean_rows - self.quarantined_rows - self.duplicate_rows


# ---------------------------------------------------------------------------------------------
# Pure transforms: DataFrame -> DataFrame
# ---------------------------------------------------------------------------------------------


# Below this much raw input, sorting the lines is cheaper than the extra passes of counting chunks
# (measured: a sample day, 5 files of ~1 MB: 2.8 s vs 4.7 s; 10M events, ~2.5 GB: the sort cost 40%
# of the clean step).
SORT_LINES_BELOW_BYTES = 256 * 2**20


def number_lines(lines: DataFrame, *, sort: bool = True) -> DataFrame:
    """Add 1-based ``line_number`` per ``source_file``, in file order.

    ``monotonically_increasing_id`` is (partition index << 33) + row index, so within one Spark
    partition a file's lines are a run of consecutive ids. ``sort=True`` numbers them with a window
    over each file (one shuffle of the lines); ``sort=False`` counts each (file, partition) chunk in
    a small aggregate and adds the row's position in its chunk (no sort of the lines, two passes).
    Both give the same numbers.
    """
    pos = lines.withColumn("_pos", F.monotonically_increasing_id())
    if sort:
        order = Window.partitionBy("source_file").orderBy("_pos")
        return pos.withColumn("line_number", F.row_number().over(order).cast("long")).drop("_pos")
    pos = pos.withColumn("_part", F.spark_partition_id())
    earlier = (
        Window.partitionBy("source_file")
        .orderBy("_start")
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    chunks = (
        pos.groupBy("source_file", "_part")
        .agg(F.min("_pos").alias("_start"), F.count(F.lit(1)).alias("_n"))
        .withColumn("_before", F.coalesce(F.sum("_n").over(earlier), F.lit(0)))
        .drop("_n")
    )
    return (
        pos.join(F.broadcast(chunks), ["source_file", "_part"])
        .withColumn(
            "line_number", (F.col("_before") + F.col("_pos") - F.col("_start") + 1).cast("long")
        )
        .drop("_pos", "_part", "_start", "_before")
    )


def _strip_bom(c: Column) -> Column:
    return F.regexp_replace(c, "^\ufeff", "")


def parse_lines(
    lines: DataFrame, *, mapping: SourceMapping, columns: tuple[str, ...] | None = None
) -> DataFrame:
    """Parse ``raw_line`` into ``f``: one string field per mapped source column.

    ``columns`` is the CSV header of the files in ``lines`` (fields are matched by name, so column
    order and extra columns do not matter; a mapped column the header lacks reads as null). The
    header line itself (line 1) is dropped; it is not a row. Every field is read as a string, so a
    bad value never fails the parse: it is judged later, with a reason. ``parse_ok`` is false where
    the line is not valid in the source format; ``is_header`` marks a repeated header line.
    """
    wanted = mapping.raw_columns
    line = _strip_bom(F.col("raw_line"))
    if mapping.format == "jsonl":
        schema = T.StructType(
            [T.StructField(c, T.StringType()) for c in wanted]
            + [T.StructField("_corrupt", T.StringType())]
        )
        parsed = F.from_json(
            line, schema, {"columnNameOfCorruptRecord": "_corrupt", "mode": "PERMISSIVE"}
        )
        out = (
            lines.withColumn("p", parsed)
            .withColumn("f", F.col("p"))
            .withColumn("is_header", F.lit(False))
        )
    else:
        header = columns or tuple(wanted)
        ddl = ", ".join(f"`{c}` STRING" for c in (*header, "_corrupt"))
        opts = {
            "columnNameOfCorruptRecord": "_corrupt",
            "mode": "PERMISSIVE",
            "sep": mapping.csv_delimiter,
        }
        fields = [
            F.col(f"p.`{c}`").alias(c) if c in header else F.lit(None).cast("string").alias(c)
            for c in wanted
        ]
        bare = F.trim(F.regexp_replace(line, '"', ""))
        out = (
            lines.filter(F.col("line_number") > 1)
            .withColumn("p", F.from_csv(line, ddl, opts))
            .withColumn("f", F.struct(*fields, F.col("p._corrupt").alias("_corrupt")))
            .withColumn("is_header", bare == mapping.csv_delimiter.join(header))
        )
    return out.withColumn(
        "parse_ok",
        F.col("p").isNotNull() & F.col("p._corrupt").isNull() & (F.trim("raw_line") != ""),
    )


def _text(mapping_column: str | None) -> Column:
    if mapping_column is None:
        return F.lit(None).cast("string")
    value = F.trim(F.col(f"f.`{mapping_column}`"))
    return F.when(value != "", value)


def _parse_time(raw: Column, *, formats: list[str], tz: str) -> Column:
    def one(fmt: str) -> Column:
        if fmt in ("epoch_ms", "epoch_s"):
            # Digits only: an ISO date must not be read as a number of seconds.
            digits = F.when(raw.rlike(r"^-?\d+(\.\d+)?$"), raw.try_cast("double"))
            micros = digits * (1000 if fmt == "epoch_ms" else 1_000_000)
            return F.timestamp_micros(micros.cast("long"))
        parsed = (
            raw.try_cast("timestamp") if fmt == "iso8601" else F.try_to_timestamp(raw, F.lit(fmt))
        )
        if tz == "UTC":
            return parsed
        # Only naive times are in the source's zone; times with an explicit offset are exact.
        return F.when(raw.rlike(_OFFSET_SUFFIX), parsed).otherwise(F.to_utc_timestamp(parsed, tz))

    return F.coalesce(*[one(f) for f in formats])


def hmac_sha256(value: Column, secret: bytes) -> Column:
    """HMAC-SHA256 (RFC 2104) of a string column, hex encoded, from Spark built-ins."""
    key = secret if len(secret) <= 64 else __import__("hashlib").sha256(secret).digest()
    key = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(value, "UTF-8")), 256))
    return F.when(value.isNotNull(), F.sha2(F.concat(F.lit(opad), inner), 256))


def pii_secret() -> bytes:
    secret = os.environ.get("PIPELINE_PII_SECRET")
    if not secret:
        raise RuntimeError("PIPELINE_PII_SECRET must be set: the mapping hashes personal columns")
    return secret.encode()


def normalize_events(
    parsed: DataFrame,
    *,
    mapping: SourceMapping,
    window_start: datetime,
    window_end: datetime,
    default_run_date: date | None = None,
) -> DataFrame:
    """Map parsed fields to the canonical event columns and give each invalid row a ``reason``.

    ``window_start``/``window_end`` (UTC) bound the event times this run accepts: earlier is
    ``too_late``, at or after the end is ``future_event``. ``reason`` is null for valid rows.
    ``run_date`` is the date that owns the row: its arrival date, or for rows of a historical load
    (no arrival date) its event date, else ``default_run_date``.
    """
    c = mapping.columns
    raw_time = _text(c.event_time)
    event_time = _parse_time(
        raw_time, formats=mapping.timestamp.formats, tz=mapping.timestamp.timezone
    )

    if c.event_type is None:
        event_type = F.lit(mapping.default_event_type)
    else:
        names = F.create_map(*[F.lit(x) for kv in mapping.event_types.items() for x in kv])
        event_type = names[_text(c.event_type)]

    raw_price, raw_qty = _text(c.price), _text(c.quantity)
    price = raw_price.try_cast("double")
    qty_double = raw_qty.try_cast("double")
    is_return = F.lit(False)
    if mapping.returns.negative_quantity:
        is_return = is_return | F.coalesce(qty_double < 0, F.lit(False))
    if mapping.returns.column and mapping.returns.prefix:
        is_return = is_return | F.coalesce(
            _text(mapping.returns.column).startswith(mapping.returns.prefix), F.lit(False)
        )
    event_type = F.when(is_return, F.lit("return")).otherwise(event_type)
    quantity = F.when(is_return, F.abs(qty_double)).otherwise(qty_double)

    event_id = (
        _text(c.event_id) if c.event_id else F.substring(F.sha2(F.col("raw_line"), 256), 1, 32)
    )
    user_id = _text(c.user_id)
    if mapping.format == "csv":
        # Spreadsheet exports write integer ids as floats ("17850.0").
        user_id = F.regexp_replace(user_id, r"\.0+$", "")
    if mapping.pii_hash_columns:
        secret = pii_secret()
        if c.user_id in mapping.pii_hash_columns:
            user_id = hmac_sha256(user_id, secret)
        if c.event_id in mapping.pii_hash_columns:
            event_id = hmac_sha256(event_id, secret)

    scalar_fields = [_text(x) for x in mapping.raw_columns]
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
        _text(c.item_id).alias("item_id"),
        _text(c.category).alias("category"),
        _text(c.item_text).alias("item_text"),
        price.alias("price"),
        quantity.alias("_quantity"),
        _text(c.session_id).alias("session_id"),
        nested.alias("_nested"),
        raw_price.alias("_raw_price"),
        raw_qty.alias("_raw_qty"),
    )
    start = F.lit(window_start).cast("timestamp")
    end = F.lit(window_end).cast("timestamp")
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
    in_window = (F.col("event_time") >= start) & (F.col("event_time") < end)
    owner = F.coalesce(
        F.col("arrival_date"),
        F.when(in_window, event_date),
        F.lit(default_run_date).cast("date"),
    )
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


def redact_pii(
    raw_line: Column, *, mapping: SourceMapping, columns: tuple[str, ...] | None
) -> Column:
    """The raw line as kept in quarantine: personal values masked.

    JSON lines: the values of personal keys are masked in the text, even in a malformed line.
    CSV: a parsed line is rewritten with personal columns masked; a line that did not parse cannot
    be masked reliably, so only its hash is kept.
    """
    personal = [*mapping.pii_columns, *mapping.pii_hash_columns]
    if not personal:
        return raw_line
    if mapping.format == "jsonl":
        for name in personal:
            pattern = rf'("{name}"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}}]*)'
            raw_line = F.regexp_replace(raw_line, pattern, rf'$1"{REDACTED}"')
        return raw_line
    header = columns or ()
    masked = F.to_csv(
        F.struct(
            *[(F.lit(REDACTED) if c in personal else F.col(f"p.`{c}`")).alias(c) for c in header]
        ),
        {"sep": mapping.csv_delimiter},
    )
    withheld = F.concat(
        F.lit("<withheld: unparsed line with personal columns; sha256="),
        F.sha2(raw_line, 256),
        F.lit(">"),
    )
    return F.when(F.col("parse_ok") & F.lit(bool(header)), masked).otherwise(withheld)


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
        lines = spark.read.text([str(f.path) for f in group]).select(
            F.lit(arrival).cast("date").alias("arrival_date"),
            F.col("_metadata.file_path").alias("source_file"),
            F.col("value").alias("raw_line"),
        )
        by_header.setdefault(header, []).append(number_lines(lines, sort=sort))
    out = []
    for header, frames in by_header.items():
        df = frames[0]
        for f in frames[1:]:
            df = df.unionByName(f)
        out.append((header, df))
    return out


def classify(
    spark: SparkSession,
    files: list[RawFile],
    *,
    mapping: SourceMapping,
    window_start: datetime,
    window_end: datetime,
    default_run_date: date | None = None,
) -> DataFrame:
    """Every raw line with its canonical columns, ``reason``, ``run_date`` and ``is_duplicate``."""
    parts = []
    for header, lines in read_raw_lines(spark, files):
        parsed = parse_lines(lines, mapping=mapping, columns=header)
        events = normalize_events(
            parsed,
            mapping=mapping,
            window_start=window_start,
            window_end=window_end,
            default_run_date=default_run_date,
        )
        # Quarantined lines are kept as valid text (invalid bytes become U+FFFD). Valid rows need
        # no raw text downstream: dropping it keeps the cached frame small.
        line = redact_pii(F.make_valid_utf8("raw_line"), mapping=mapping, columns=header)
        kept = F.when(F.col("reason").isNotNull(), line)
        parts.append(events.withColumn("quarantine_line", kept).drop("p", "raw_line"))
    if not parts:
        raise ValueError(f"{mapping.name}: no raw files to clean")
    df = parts[0]
    for p in parts[1:]:
        df = df.unionByName(p)
    return mark_duplicates(df)


def clean_events(
    spark: SparkSession,
    files: list[RawFile],
    *,
    mapping: SourceMapping,
    lake: Path,
    first_date: date,
    last_date: date,
    owned_dates: list[date],
    default_run_date: date | None = None,
) -> list[RunSummary]:
    """Clean ``files``; rebuild event partitions [first_date, last_date]; summarize owned dates."""
    window_start = datetime.combine(first_date, time(), tzinfo=UTC)
    window_end = datetime.combine(last_date + timedelta(days=1), time(), tzinfo=UTC)
    classified = classify(
        spark,
        files,
        mapping=mapping,
        window_start=window_start,
        window_end=window_end,
        default_run_date=default_run_date,
    ).persist()
    try:
        clean = classified.filter(F.col("reason").isNull() & ~F.col("is_duplicate"))
        span = [first_date + timedelta(days=k) for k in range((last_date - first_date).days + 1)]
        written = write_partitions(
            clean.select(*EVENT_COLUMNS, "event_date"),
            lake / "events",
            column="event_date",
            dates=span,
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
        write_partitions(
            quarantine,
            lake / "quarantine",
            column="ingest_date",
            dates=owned_dates,
            keep_empty=True,
        )
        summaries = summarize(owned, source=mapping.name, dates=owned_dates)
    finally:
        classified.unpersist()
    for s in summaries:
        s.partitions_written = written
        write_summary(s, lake)
    return summaries


def clean_day(
    spark: SparkSession, *, mapping: SourceMapping, raw_root: Path, lake: Path, run_date: date
) -> RunSummary:
    """The daily run: the files that arrived on ``run_date`` and the partitions they can touch."""
    L = mapping.lateness_days
    if not day_files(raw_root, mapping, run_date):
        folder = raw_root / run_date.strftime(mapping.day_folder)
        raise FileNotFoundError(
            f"{mapping.name}: no raw files for {run_date} in {folder} (is the export late?)"
        )
    files = [
        inspect(p, mapping, d)
        for d in (run_date + timedelta(days=k) for k in range(-L, L + 1))
        for p in day_files(raw_root, mapping, d)
    ]
    (summary,) = clean_events(
        spark,
        files,
        mapping=mapping,
        lake=lake,
        first_date=run_date - timedelta(days=L),
        last_date=run_date,
        owned_dates=[run_date],
    )
    summary.raw_files = [str(f.path) for f in files if f.arrival_date == run_date]
    write_summary(summary, lake)
    return summary


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


def write_partitions(
    df: DataFrame, path: Path, *, column: str, dates: list[date], keep_empty: bool = False
) -> list[str]:
    """Replace exactly the ``column`` partitions in ``dates``; the others stay as they are.

    Rows are sorted within their Spark partitions, not shuffled by date: one less full shuffle
    (each task writes one file per date it holds). A date with no rows has its partition removed,
    or (``keep_empty``) written as an empty file, so a rerun never leaves a stale partition behind.
    """
    rows = df.filter(F.col(column).isin(dates))
    sort = [
        c
        for c in ("user_id", "event_time", "event_id", "source_file", "line_number")
        if c in df.columns
    ]
    started = wallclock.time()
    rows.sortWithinPartitions(column, *sort).write.mode("overwrite").partitionBy(column).parquet(
        str(path)
    )
    # Dynamic overwrite moves the partitions it wrote into place and leaves the others untouched:
    # a partition holds files newer than the write's start exactly when this write produced it.
    present = sorted(
        d.isoformat() for d in dates if _written_since(path / f"{column}={d.isoformat()}", started)
    )
    for d in sorted({d.isoformat() for d in dates} - set(present)):
        shutil.rmtree(path / f"{column}={d}", ignore_errors=True)
        if keep_empty:
            df.limit(0).drop(column).coalesce(1).write.mode("overwrite").parquet(
                str(path / f"{column}={d}")
            )
    return present


def _written_since(folder: Path, started: float) -> bool:
    return folder.is_dir() and any(f.stat().st_mtime >= started for f in folder.glob("*.parquet"))


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
    from jobs.warehouse import write_run_summaries

    settings = get_settings()
    mapping = load_mapping(source)
    summary = clean_day(
        get_spark(f"clean-{mapping.name}"),
        mapping=mapping,
        raw_root=raw_path or settings.raw_dir / mapping.name,
        lake=settings.source_lake(mapping.name),
        run_date=run_date,
    )
    write_run_summaries([summary])
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
