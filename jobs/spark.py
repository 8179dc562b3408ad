"""SparkSession construction. Never called at import time."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession


def get_spark(app_name: str = "clickstream", *, master: str | None = None) -> SparkSession:
    """Return the process's SparkSession, creating it with the pipeline's settings if needed.

    UTC session time zone (event_date is the UTC date), dynamic partition overwrite (a run replaces
    only the partitions it writes), few shuffle partitions (daily volumes are small; a 2-core machine).
    """
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return (
        SparkSession.builder.appName(app_name)
        .master(master or os.environ.get("SPARK_MASTER", "local[2]"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.shuffle.partitions", os.environ.get("SPARK_SHUFFLE_PARTITIONS", "4"))
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .getOrCreate()
    )
