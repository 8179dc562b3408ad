"""What a scoring run scores, and what date a run processes, from its Airflow context."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException

from pipeline.assets import SESSIONIZED_EVENTS, run_context, run_date_of, score_targets


def _event(source: str, run_date: str) -> SimpleNamespace:
    return SimpleNamespace(extra={"source": source, "run_date": run_date})


def test_every_triggering_event_is_scored_for_its_own_source():
    """A backfill of three days queues three events (one repeated): three dates, not the latest."""
    events = [_event("shop_a", "2026-02-28"), _event("shop_a", "2026-02-27"),
              _event("shop_b", "2026-03-01"), _event("shop_a", "2026-02-28")]  # fmt: skip
    context = {"params": {"source": "sample_clickstream", "score_date": None},
               "triggering_asset_events": {SESSIONIZED_EVENTS: events}}  # fmt: skip
    assert score_targets(context) == [
        {"source": "shop_a", "score_date": "2026-02-27"},
        {"source": "shop_a", "score_date": "2026-02-28"},
        {"source": "shop_b", "score_date": "2026-03-01"},
    ]


def test_a_manual_score_date_wins_and_nothing_to_score_fails_at_once():
    manual = {"params": {"source": "online_retail", "score_date": "2011-12-09"}}
    assert score_targets(manual) == [{"source": "online_retail", "score_date": "2011-12-09"}]
    with pytest.raises(AirflowFailException, match="nothing to score"):
        score_targets(
            {"params": {"source": "x", "score_date": None}, "triggering_asset_events": {}}
        )


def test_run_date_from_params_or_logical_date_or_a_clear_failure():
    assert run_date_of({"params": {"run_date": "2026-01-05"}}) == date(2026, 1, 5)
    logical = pendulum.datetime(2026, 1, 7, tz="UTC")
    assert run_date_of({"params": {"run_date": None}, "logical_date": logical}) == date(2026, 1, 7)
    # A manual trigger without a logical date (Airflow 3 allows it) and without run_date.
    with pytest.raises(AirflowFailException, match="no date to process"):
        run_date_of({"params": {}, "logical_date": None})


def test_a_wrong_source_is_a_configuration_error_never_retried():
    with pytest.raises(AirflowFailException, match="configuration error.*no source mapping 'shop'"):
        run_context("shop", date(2026, 1, 1))
