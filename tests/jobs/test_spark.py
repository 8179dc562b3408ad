"""The pipeline's Spark session: UTC days, or a clear refusal."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pyspark.sql import functions as F

from jobs.spark import get_spark


def test_a_running_session_in_another_time_zone_is_refused(spark, settings):
    """Day partitions are UTC days computed in the session's zone: a session in another zone
    (someone's own, reused by get_spark) would file late-evening events under the wrong day."""
    assert get_spark(settings) is spark  # the running UTC session is reused
    instant = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)  # 2025-12-31 19:00 in Los Angeles
    row = spark.createDataFrame([(instant,)], "t timestamp")
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        assert row.select(F.to_date("t")).first()[0] == date(2025, 12, 31)  # the wrong day
        with pytest.raises(RuntimeError, match=r"timeZone is 'America/Los_Angeles'.*need 'UTC'"):
            get_spark(settings)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert row.select(F.to_date("t")).first()[0] == date(2026, 1, 1)
    assert get_spark(settings) is spark
