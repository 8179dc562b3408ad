"""Nightly scoring: the exact champion version scores and stamps rows; nothing replaces rows with none."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from behavior_model import registry
from behavior_model.config import TrainConfig
from behavior_model.score import NothingToScoreError, score_users
from behavior_model.train import run_training
from pipeline.context import RunContext
from pipeline.lake import read_partitions, without_bots
from pipeline.sample_data import SampleConfig, canonical_events
from pipeline.source_mapping import load_mapping
from pipeline.tables import USER_PROPENSITY_SCORES
from tests.behavior_model.conftest import write_sessionized
from tests.conftest import fresh_postgres_database, use_data_dir

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
    first = run_training(ctx, fast)
    second = run_training(ctx, replace(fast, seed=123, lightgbm_margin=None))
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
    # Spark batches users differently from one pandas call (other padding): float32 rounding only.
    churn = rows["churn"].to_numpy()
    assert churn == pytest.approx(by_version["1"]["churn_probability"], abs=1e-6)
    assert abs(churn - by_version["2"]["churn_probability"].to_numpy()).max() > 1e-3


def test_rescoring_replaces_the_date_without_duplicates(two_versions):
    ctx = two_versions
    first = score_users(ctx)
    again = score_users(ctx)
    rows = _rows(ctx, SCORE_DATE)
    assert first.rows == again.rows == len(rows) == rows["user_id"].nunique()


def test_a_date_without_data_fails_and_keeps_its_rows(two_versions):
    ctx = two_versions
    later = date(2026, 3, 30)  # after the last event in the lake
    kept = [
        (
            ctx.source,
            later,
            "u-kept",
            0.1,
            0.2,
            ctx.registered_model_name,
            "1",
            datetime(2026, 3, 31),
        )
    ]
    ctx.warehouse.replace(USER_PROPENSITY_SCORES, {"source": ctx.source, "score_date": later}, kept)
    with pytest.raises(NothingToScoreError, match="no events on 2026-03-30.*kept"):
        score_users(replace(ctx, run_date=later))
    assert list(_rows(ctx, later)["user_id"]) == ["u-kept"]


def test_no_champion_names_the_training_dag(isolated_settings):
    ctx = RunContext(isolated_settings, load_mapping("online_retail"), SCORE_DATE)
    with pytest.raises(LookupError, match="behavior-model-online_retail@champion.*training"):
        score_users(ctx)


def _count(ctx: RunContext, table: str, day: date) -> int:
    return ctx.warehouse.query(
        f"SELECT count(*) FROM {table} WHERE source = ? AND score_date = ?", [ctx.source, day]
    )[0][0]


def test_every_insight_table_holds_the_date_and_realised_metrics_follow_the_labels(two_versions):
    ctx = two_versions
    early = date(2026, 2, 5)  # purchase labels (7 days) and churn labels (14) complete by 02-19
    first = score_users(replace(ctx, run_date=early))
    wh = ctx.warehouse
    pending = wh.query(
        "SELECT label, status, labels_complete_on, roc_auc, message FROM model_performance_history "
        "WHERE source = ? AND score_date = ? ORDER BY label",
        [ctx.source, early],
    )
    assert [(r[0], r[1], str(r[2]), r[3]) for r in pending] == [
        ("churn", "pending", "2026-02-19", None),
        ("purchase", "pending", "2026-02-12", None),
    ]
    assert "complete on 2026-02-12" in pending[1][4]

    result = score_users(ctx)
    n = result.rows
    assert n > 50
    for table, per_user in [
        ("user_propensity_scores", 1), ("user_profiles", 1), ("user_embeddings", 1),
        ("user_score_explanations", 6),
    ]:  # fmt: skip
        assert _count(ctx, table, SCORE_DATE) == n * per_user, table
    segments = wh.query(
        "SELECT segment_id, users, description, k_choice FROM segment_summary "
        "WHERE source = ? AND score_date = ? ORDER BY segment_id",
        [ctx.source, SCORE_DATE],
    )
    assert sum(r[1] for r in segments) == n and all(r[2] for r in segments)
    # Same model version as on 02-05: k and the ids carry over from the earlier date.
    assert all(r[3].startswith("kept from the previous date") for r in segments)
    earlier_ids = wh.query(
        "SELECT segment_id FROM segment_summary WHERE source = ? AND score_date = ? ORDER BY 1",
        [ctx.source, early],
    )
    assert [r[0] for r in segments] == [r[0] for r in earlier_ids]
    monitored = dict(
        wh.query(
            "SELECT name, status FROM model_monitoring WHERE source = ? AND score_date = ?",
            [ctx.source, SCORE_DATE],
        )
    )
    assert {"recency_days", "churn_probability", "purchase_probability"} <= set(monitored)
    # Scored on its training date, the population is the reference itself: no drift at all (was
    # PSI 0.19 when the reference came back from float32 context through 1.9999998 < 2.0).
    assert set(monitored.values()) == {"ok"}
    psi = dict(
        wh.query(
            "SELECT kind, max(psi) FROM model_monitoring WHERE source = ? AND score_date = ? "
            "GROUP BY kind",
            [ctx.source, SCORE_DATE],
        )
    )
    assert psi["input"] == pytest.approx(0.0, abs=1e-9), psi
    # Scores: Spark batches users differently from training (float32 rounding in the 8th digit),
    # enough to move a user sitting on a decile edge into the next bin, nothing more.
    assert psi["score"] < 0.005, psi
    realised = wh.query(
        "SELECT label, status, evaluated_as_of, users, roc_auc, ece FROM model_performance_history "
        "WHERE source = ? AND score_date = ? ORDER BY label",
        [ctx.source, early],
    )
    assert [(r[0], r[1], r[2], r[3]) for r in realised] == [
        ("churn", "realised", SCORE_DATE, first.rows),
        ("purchase", "realised", SCORE_DATE, first.rows),
    ]
    assert all(0.5 < r[4] <= 1 and 0 <= r[5] < 0.5 for r in realised)
    page = Path(result.report).read_text()
    assert f"nightly scores for {SCORE_DATE}" in page and "Biggest movers since 2026-02-05" in page
    assert page.count("data:image/png;base64,") == 4


def test_the_same_date_lands_in_postgresql_with_every_insight_table(two_versions):
    """Production's warehouse: the rows go through COPY (numbers, NULLs, dates, REAL[] vectors)."""
    with fresh_postgres_database("score") as url:
        ctx = two_versions
        pg = replace(ctx, settings=replace(ctx.settings, warehouse_url=url))
        pg.warehouse.init()
        result = score_users(pg)
        counts = {
            t: pg.warehouse.query(f"SELECT count(*) FROM {t} WHERE score_date = ?", [SCORE_DATE])[
                0
            ][0]
            for t in (
                "user_propensity_scores",
                "user_profiles",
                "user_embeddings",
                "user_score_explanations",
            )
        }
        assert counts == {
            "user_propensity_scores": result.rows, "user_profiles": result.rows,
            "user_embeddings": result.rows, "user_score_explanations": 6 * result.rows,
        }  # fmt: skip
        user = pg.warehouse.query("SELECT min(user_id) FROM user_embeddings")[0][0]
        alike = pg.warehouse.query(
            "SELECT user_id, similarity FROM analytics.lookalike_users(?, ?, ?, 3)",
            [ctx.source, user, SCORE_DATE],
        )
        assert len(alike) == 3 and all(-1 <= s <= 1 for _, s in alike)
        assert (
            pg.warehouse.query("SELECT count(*) FROM analytics.latest_user_scores")[0][0]
            == result.rows
        )
