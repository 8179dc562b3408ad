"""SparkSession construction and Spark schemas from the contracts. Never called at import time."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from pipeline.contracts import EVENT_FIELDS
from pipeline.settings import Settings

log = logging.getLogger(__name__)

_SPARK_TYPES = {
    "string": T.StringType(),
    "timestamp": T.TimestampType(),
    "double": T.DoubleType(),
    "bigint": T.LongType(),
}


def event_schema(*, with_event_date: bool = False) -> T.StructType:
    """The event contract as a Spark schema (``pipeline.contracts.EVENT_FIELDS``)."""
    schema = T.StructType(
        [T.StructField(n, _SPARK_TYPES[t], null) for n, t, _, null, _ in EVENT_FIELDS]
    )
    return schema.add("event_date", "date", False) if with_event_date else schema


def get_spark(settings: Settings, app_name: str = "clickstream") -> SparkSession:
    """Return the process's SparkSession, creating it with the pipeline's settings if needed.

    UTC session time zone (event_date is the UTC date), few shuffle partitions (daily volumes are
    small; a 2-core machine). One process (a ``dag.test()`` demo, the test suite) reuses one
    session: Spark would only warn that the settings of a second builder are ignored.
    """
    # The running session, from any thread (getActiveSession is per thread); asking the builder
    # again would only warn that its settings are ignored.
    active = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if active is not None:
        zone = active.conf.get("spark.sql.session.timeZone")
        if zone != "UTC":
            # Day partitions (event_date, cutoff_date) and timestamps parsed in a source's
            # time zone are computed in the session's zone: another zone would file events
            # under the wrong day without a single error.
            raise RuntimeError(
                f"the running Spark session's spark.sql.session.timeZone is {zone!r}; the "
                "pipeline's jobs compute UTC days and need 'UTC': set it on that session "
                "(spark.conf.set('spark.sql.session.timeZone', 'UTC')) or stop it"
            )
        return active
    log.info("starting Spark (%s) for %s", settings.spark_master, app_name)
    builder = SparkSession.builder
    if settings.spark_driver_host:
        # Executors on other hosts connect back to the driver by this name.
        builder = builder.config("spark.driver.host", settings.spark_driver_host).config(
            "spark.driver.bindAddress", "0.0.0.0"
        )
    spark = (
        builder.appName(app_name)
        .master(settings.spark_master)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.driver.memory", settings.spark_driver_memory)
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .getOrCreate()
    )
    # Spark's own start-up chatter goes to log4j at INFO; task logs need warnings and up.
    spark.sparkContext.setLogLevel("WARN")
    return spark
