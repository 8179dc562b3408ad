"""Every kind of broken input: nothing crashes, no row is lost silently, reasons and counts exact."""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from pyspark.sql import functions as F

from jobs.clean import classify
from jobs.raw_files import RawFileError, inspect
from pipeline.contracts import QUARANTINE_REASONS
from tests.jobs.bad_input_corpus import CASES, JSONL, Case, jrow

WINDOW = dict(
    window_start=datetime(2026, 1, 1, tzinfo=UTC), window_end=datetime(2026, 2, 1, tzinfo=UTC)
)


def _run(spark, case: Case, tmp_path):
    path = tmp_path / case.filename
    path.write_bytes(case.content)
    raw = inspect(path, case.mapping, date(2026, 1, 5))
    return classify(spark, [raw], mapping=case.mapping, **WINDOW)


def test_the_corpus_covers_every_quarantine_reason():
    assert len({c.name for c in CASES}) == len(CASES) >= 15
    expected = {reason for c in CASES for reason in c.expected}
    assert set(QUARANTINE_REASONS) <= expected, set(QUARANTINE_REASONS) - expected


def test_whitespace_is_trimmed_and_free_text_loses_personal_data(spark, tmp_path):
    (case,) = [c for c in CASES if c.name == "whitespace_ids"]
    users = {r.user_id for r in _run(spark, case, tmp_path).filter("reason IS NULL").collect()}
    assert users == {"u1", "u5"}
    text = Case(
        "pii_in_text", JSONL, "text.jsonl",
        (jrow(1, item="I1", text="MUG, questions to jo@example.org or +44 20 7946 0958") + "\n").encode(),
    )  # fmt: skip
    mapping = text.mapping.model_copy(
        update={"columns": text.mapping.columns.model_copy(update={"item_text": "text"})}
    )
    (row,) = _run(spark, replace(text, mapping=mapping), tmp_path).collect()
    assert row.reason is None and row.item_text == "MUG, questions to <email> or <phone>"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input(spark, case, tmp_path):
    if case.error:
        with pytest.raises(RawFileError, match=case.error):
            _run(spark, case, tmp_path)
        return
    rows = _run(spark, case, tmp_path)
    outcome = F.coalesce("reason", F.when(F.col("is_duplicate"), "duplicate"), F.lit("clean"))
    got = {r["o"]: r["count"] for r in rows.groupBy(outcome.alias("o")).count().collect()}
    assert got == case.expected
    # Nothing lost: one classified row per data line of the file (the header is not a row).
    content = gzip.decompress(case.content) if case.filename.endswith(".gz") else case.content
    data_lines = content.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()
    header = 1 if case.mapping.format == "csv" and data_lines else 0
    assert rows.count() == len(data_lines) - header
    # Personal values never survive, not even in quarantined raw lines.
    kept = " ".join(r.quarantine_line or "" for r in rows.select("quarantine_line").collect())
    assert "@example.com" not in kept


def test_times_in_every_format_are_the_same_instant(spark, tmp_path):
    (case,) = [c for c in CASES if c.name == "timestamp_formats"]
    times = {r.event_time for r in _run(spark, case, tmp_path).filter("reason IS NULL").collect()}
    assert times == {datetime(2026, 1, 5, 10, 0)}


def test_windows_line_endings_leave_no_carriage_return(spark, tmp_path):
    (case,) = [c for c in CASES if c.name == "windows_line_endings"]
    rows = _run(spark, case, tmp_path).collect()
    assert [r.quantity for r in rows] == [1, 3]
    assert not any("\r" in (r.event_id + r.item_id) for r in rows)
