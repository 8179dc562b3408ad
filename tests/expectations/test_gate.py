"""The Great Expectations gates pass good data and stop bad data loudly."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from expectations import DataQualityError, run_gate, suites

WINDOW = dict(
    window_start=datetime(2026, 1, 1, tzinfo=UTC), window_end=datetime(2026, 1, 2, tzinfo=UTC)
)


def _events(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "user_id": ["u1"] * n,
            "event_time": pd.date_range("2026-01-01T01:00Z", periods=n, freq="h"),
            "event_type": ["view"] * n,
            "item_id": ["I1"] * n,
            "price": [1.0] * n,
            "quantity": [1] * n,
        }
    )


def test_clean_events_pass_and_their_page_is_filed_under_the_run_date(tmp_path):
    site = tmp_path / "site"
    kwargs = dict(docs_path=site / "runs" / "2026-01-01" / "clean_events.json", site=site,
                  run_name="2026-01-01")  # fmt: skip
    result = run_gate("clean_events", _events(), suites.clean_events(**WINDOW), **kwargs)
    assert result["success"] is True
    assert result["statistics"]["unsuccessful_expectations"] == 0
    assert kwargs["docs_path"].exists()
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")) == [
        "runs/2026-01-01/clean_events.html"
    ]
    # A rerun of the same date replaces its page instead of adding one.
    run_gate("clean_events", _events(), suites.clean_events(**WINDOW), **kwargs)
    assert len(list(site.rglob("*.html"))) == 1


def test_bad_rows_stop_the_run_naming_expectation_and_rows(tmp_path):
    bad = _events()
    bad.loc[1, "event_type"] = "click"
    bad.loc[2, "event_time"] = pd.Timestamp("2026-01-05T00:00Z")
    bad.loc[3, "price"] = -2.0
    with pytest.raises(DataQualityError) as err:
        run_gate("clean_events", bad, suites.clean_events(**WINDOW), docs_path=tmp_path / "r.json")
    msg = str(err.value)
    assert "failed 3 expectation(s)" in msg
    assert "expect_column_values_to_be_in_set" in msg and "click" in msg
    assert "expect_column_values_to_be_between {'column': 'event_time'" in msg
    assert "2026-01-05" in msg and "-2.0" in msg
    assert "e0" not in msg  # only offending rows are shown


def test_empty_day_fails_the_row_count():
    with pytest.raises(DataQualityError, match="expect_table_row_count_to_be_between.*observed 0"):
        run_gate("clean_events", _events().iloc[:0], suites.clean_events(**WINDOW))


def test_reconciliation_must_hold():
    row = {"raw_rows": 10, "clean_rows": 7, "quarantined_rows": 1, "duplicate_rows": 1}
    unreconciled = pd.DataFrame([row | {"unaccounted_rows": 1}])
    with pytest.raises(DataQualityError, match="unaccounted_rows"):
        run_gate("run_summary", unreconciled, suites.run_summary())
    fixed = pd.DataFrame([row | {"quarantined_rows": 2, "unaccounted_rows": 0}])
    assert run_gate("run_summary", fixed, suites.run_summary())["success"] is True


def test_quarantined_rows_need_a_documented_reason_and_a_real_line():
    rows = pd.DataFrame(
        {
            "source_file": ["f.csv", "f.csv", "f.csv"],
            "line_number": [2, 3, 3],
            "reason": ["malformed", "missing_user_id", "it_looked_odd"],
        }
    )
    with pytest.raises(DataQualityError) as err:
        run_gate("quarantined_rows", rows, suites.quarantined_rows())
    msg = str(err.value)
    assert "failed 2 expectation(s)" in msg and "it_looked_odd" in msg
    assert "expect_compound_columns_to_be_unique" in msg
    assert run_gate("quarantined_rows", rows.iloc[:2], suites.quarantined_rows())["success"] is True
