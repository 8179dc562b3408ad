"""Sessionizing: gap rule, deterministic ids."""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.sessionize import flag_bots, sessionize


def _events(spark, rows):
    return spark.createDataFrame(
        [(f"e{i}", u, t) for i, (u, t) in enumerate(rows)],
        "event_id string, user_id string, event_time timestamp",
    )


def test_sessions_split_after_the_idle_gap(spark):
    t0 = datetime(2026, 1, 1, 10, 0)
    rows = [
        ("a", t0),
        ("a", t0 + timedelta(minutes=30)),  # exactly the gap: same session
        ("a", t0 + timedelta(minutes=61)),  # 31 minutes later: new session
        ("b", t0 + timedelta(minutes=5)),
        ("a", t0 + timedelta(days=1)),
    ]
    out = sessionize(_events(spark, rows), idle_gap=timedelta(minutes=30))
    ids = {r.event_id: r.session_id for r in out.collect()}
    assert ids["e0"] == ids["e1"]
    assert len({ids["e0"], ids["e2"], ids["e3"], ids["e4"]}) == 4
    per_user = out.groupBy("user_id").agg(F.countDistinct("session_id").alias("n"))
    assertDataFrameEqual(
        per_user, spark.createDataFrame([("a", 3), ("b", 1)], "user_id string, n long")
    )


def test_session_ids_are_deterministic_and_order_independent(spark):
    t0 = datetime(2026, 1, 1, 23, 50)
    rows = [("a", t0), ("a", t0 + timedelta(minutes=20)), ("c", t0)]
    first = sessionize(_events(spark, rows))
    second = sessionize(_events(spark, list(reversed(rows))))
    # Same events in another order (ids renumbered) give the same session ids per (user, time).
    key = ["user_id", "event_time", "session_id"]
    assertDataFrameEqual(first.select(*key), second.select(*key))
    assert first.select("session_id").distinct().count() == 2


def test_bots_are_flagged_per_day(spark):
    t0 = datetime(2026, 1, 1, 10, 0)
    burst = [("bot", t0 + timedelta(milliseconds=500 * k)) for k in range(61)]  # 61 in 30 seconds
    calm = [("bot", t0 + timedelta(days=1)), ("human", t0), ("human", t0 + timedelta(seconds=1))]
    out = flag_bots(_events(spark, burst + calm), max_events_per_minute=60)
    flags = {(r.user_id, r.event_time.date().day, r.is_bot) for r in out.collect()}
    assert flags == {("bot", 1, True), ("bot", 2, False), ("human", 1, False)}
    at_limit = flag_bots(_events(spark, burst[:60]), max_events_per_minute=60)
    assert at_limit.filter("is_bot").count() == 0
