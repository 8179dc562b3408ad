"""Parsing raw lines: line numbers per file, source format to string fields, source times to UTC.

Every field is parsed as text first (a bad value never fails a parse; the clean job gives it a
reason later). Pure ``DataFrame -> DataFrame`` / column functions.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline.source_mapping import SourceMapping

_OFFSET_SUFFIX = r"(Z|[+-]\d{2}:?\d{2})$"


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


def strip_bom(c: Column) -> Column:
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
    line = strip_bom(F.col("raw_line"))
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


def parse_time(raw: Column, *, formats: list[str], tz: str) -> Column:
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
