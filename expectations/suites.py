"""The suites, one function each, built from the event contract."""

from __future__ import annotations

from datetime import datetime

import great_expectations as gx
import pandas as pd

from pipeline.contracts import EVENT_TYPES, QUARANTINE_REASONS

E = gx.expectations
KEY_COLUMNS = ("event_id", "user_id", "event_time", "event_type", "item_id")


def clean_events(*, window_start: datetime, window_end: datetime) -> list:
    """Clean events of one run: keys present, types known, times in the run's window, prices >= 0."""
    return [
        E.ExpectTableRowCountToBeBetween(min_value=1),
        *[E.ExpectColumnValuesToNotBeNull(column=c) for c in KEY_COLUMNS],
        E.ExpectColumnValuesToBeUnique(column="event_id"),
        E.ExpectColumnValuesToBeInSet(column="event_type", value_set=list(EVENT_TYPES)),
        E.ExpectColumnValuesToBeBetween(
            column="event_time",
            min_value=pd.Timestamp(window_start),
            max_value=pd.Timestamp(window_end),
            strict_max=True,
        ),
        E.ExpectColumnValuesToBeBetween(column="price", min_value=0),
        E.ExpectColumnValuesToBeBetween(column="quantity", min_value=0),
    ]


def quarantined_rows() -> list:
    """The mapped raw rows that were rejected: each has its file, line and a documented reason."""
    return [
        E.ExpectColumnValuesToNotBeNull(column="source_file"),
        E.ExpectColumnValuesToBeBetween(column="line_number", min_value=1),
        E.ExpectColumnValuesToBeInSet(column="reason", value_set=sorted(QUARANTINE_REASONS)),
        E.ExpectCompoundColumnsToBeUnique(column_list=["source_file", "line_number"]),
    ]


def run_summary(*, require_rows_each_day: bool = True) -> list:
    """The reconciliation: every raw row is clean, quarantined or a duplicate.

    A daily run must also have clean rows (an empty day is an incident); a historical load may
    have empty days (a shop closed on Saturdays).
    """
    checks = [
        E.ExpectTableRowCountToBeBetween(min_value=1),
        E.ExpectColumnValuesToBeBetween(column="unaccounted_rows", min_value=0, max_value=0),
    ]
    if require_rows_each_day:
        checks.append(E.ExpectColumnValuesToBeBetween(column="clean_rows", min_value=1))
    return checks


def sessionized_events() -> list:
    """Every sessionized event belongs to a session and carries its bot flag; events stay unique."""
    return [
        E.ExpectTableRowCountToBeBetween(min_value=1),
        E.ExpectColumnValuesToNotBeNull(column="session_id"),
        E.ExpectColumnValuesToNotBeNull(column="is_bot"),
        E.ExpectColumnValuesToBeUnique(column="event_id"),
    ]
