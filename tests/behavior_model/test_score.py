"""Nightly scoring: the exact champion version scores and stamps rows; nothing replaces rows with none."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pandas as pd
import pytest

from behavior_model import registry
from behavior_model.config import TrainConfig
from behavior_model.score import NothingToScoreError, score_users
from behavior_model.train import train_and_register
from pipeline.context import RunContext
from pipeline.lake import read_partitions, without_bots
from pipeline.sample_data import SampleConfig, canonical_events
from pipeline.source_mapping import load_mapping
from pipeline.tables import USER_PROPENSITY_SCORES
from tests.behavior_model.conftest import write_sessionized
from tests.conftest import use_data_dir

pytestmark = pytest.mark.slow
SCORE_DATE = date(2026, 2, 19)


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """A lake and two registered versions that score differently; version 1 is champion."""
    mp = pytest.MonkeyPatch()
    settings = use_data_dir(mp, tmp_path_factory.mktemp("score"))
    ctx = RunContext(settings, load_mapping("sample_clickstream"), SCORE_DATE)
    events = canonical_events(SampleConfig(days=50, users=200, seed=5))
    write_sessionized(ctx.lake, events)
    fast = TrainConfig(pretrain_epochs=0, epochs=1, calibrate=False)
    fast = replace(fast, model=replace(fast.model, use_text=False))
    first = train_and_register(events, fast, ctx)
    second = train_and_register(events, replace(fast, seed=123, lightgbm_margin=None), ctx)
    registry.set_champion(ctx.registered_model_name, "1")
    assert (first["model_version"], second["model_version"]) == ("1", "2")
    yield ctx
    mp.undo()


def _rows(ctx: RunContext, day: date) -> pd.DataFrame:
    rows = ctx.warehouse.query(
        "SELECT user_id, churn_probability, purchase_probability, model_version "
        "FROM user_propensity_scores WHERE score_date = ? ORDER BY user_id",
        [day],
    )
    return pd.DataFrame(rows, columns=["user_id", "churn", "purchase", "version"])


def test_rows_carry_the_version_that_scored_them_even_if_promotion_lands_meanwhile(
    two_versions, monkeypatch
):
    """Bug: the version stamped on rows came from one alias lookup and the model from another.

    A promotion between the two made version 2 score rows stamped "1". Now the alias is resolved
    once and exactly that version is loaded.
    """
    ctx = two_versions
    name = ctx.registered_model_name
    real_resolve = registry.resolve_champion

    def resolve_then_promote(model_name: str) -> str | None:
        version = real_resolve(model_name)
        registry.set_champion(model_name, "2")  # another run promotes right after the lookup
        return version

    monkeypatch.setattr(registry, "resolve_champion", resolve_then_promote)
    result = score_users(ctx)
    registry.set_champion(name, "1")
    assert result.model_version == "1"
    rows = _rows(ctx, SCORE_DATE)
    assert set(rows["version"]) == {"1"} and len(rows) == result.rows > 50

    events = without_bots(read_partitions(ctx.lake.sessionized_events, end=SCORE_DATE))
    cutoff = pd.Timestamp(SCORE_DATE, tz="UTC") + pd.Timedelta(days=1)
    by_version = {
        v: registry.load_version(name, v).predict_users(events, cutoff).sort_values("user_id")
        for v in ("1", "2")
    }
    assert list(rows["user_id"]) == list(by_version["1"]["user_id"])
    assert rows["churn"].to_numpy() == pytest.approx(by_version["1"]["churn_probability"], abs=1e-9)
    assert not rows["churn"].to_numpy() == pytest.approx(
        by_version["2"]["churn_probability"], abs=1e-6
    )


def test_rescoring_replaces_the_date_without_duplicates(two_versions):
    ctx = two_versions
    first = score_users(ctx)
    again = score_users(ctx)
    rows = _rows(ctx, SCORE_DATE)
    assert first.rows == again.rows == len(rows) == rows["user_id"].nunique()


def test_a_date_without_data_fails_and_keeps_its_rows(two_versions):
    ctx = two_versions
    later = date(2026, 3, 30)  # after the last event in the lake
    kept = [(later, "u-kept", 0.1, 0.2, ctx.registered_model_name, "1", datetime(2026, 3, 31))]
    ctx.warehouse.replace(USER_PROPENSITY_SCORES, {"score_date": later}, kept)
    with pytest.raises(NothingToScoreError, match="no events on 2026-03-30.*kept"):
        score_users(replace(ctx, run_date=later))
    assert list(_rows(ctx, later)["user_id"]) == ["u-kept"]


def test_no_champion_names_the_training_dag(isolated_settings):
    ctx = RunContext(isolated_settings, load_mapping("online_retail"), SCORE_DATE)
    with pytest.raises(LookupError, match="behavior-model-online_retail@champion.*training"):
        score_users(ctx)
