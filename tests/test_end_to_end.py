"""The DAGs, run by Airflow on a small sample, leave the right rows in the warehouse.

The sample's history loads as one backfill run and its last days as daily runs, as a source is
onboarded: the daily runs pick up the backfill's late-event window, and a daily rerun of a
backfilled day changes nothing (``test_reruns_replace_and_never_duplicate``)."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pendulum
import pytest

from dags.demo import report, run_pipeline
from dags.run import run_in_process
from pipeline.settings import Settings
from pipeline.source_mapping import load_mapping
from pipeline.warehouse import Warehouse

pytestmark = pytest.mark.slow
START, DAYS, USERS = date(2026, 1, 1), 36, 200
BACKFILL_DAYS = 32  # then 4 daily runs: more than the mapping's 2-day lateness window
RERUN_DAY = START + timedelta(days=10)  # a backfilled day that test_reruns runs again daily


@pytest.fixture(scope="module")
def pipeline(data_dir, spark):
    return run_pipeline(
        data_dir=data_dir, start=START, days=DAYS, users=USERS, backfill_days=BACKFILL_DAYS,
        log=lambda *_: None,
    )  # fmt: skip


def _warehouse() -> Warehouse:
    return Warehouse(Settings.from_env().warehouse_url)


def _scores(day: date) -> dict[str, tuple[float, float, str]]:
    rows = _warehouse().query(
        "SELECT user_id, churn_probability, purchase_probability, model_version "
        "FROM user_propensity_scores WHERE score_date = ?",
        [day],
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _eligible_users(last_day: date) -> set[str]:
    lake = Settings.from_env().source_lake("sample_clickstream")
    lookback = load_mapping("sample_clickstream").labels.lookback_days
    since = last_day - timedelta(days=lookback - 1)  # the lookback window ends with last_day
    events = f"read_parquet('{lake}/sessionized_events/*/*.parquet', hive_partitioning = true)"
    rows = duckdb.sql(
        f"SELECT DISTINCT user_id FROM {events} WHERE event_date BETWEEN DATE '{since}' AND DATE '{last_day}' "
        f"AND user_id NOT IN (SELECT user_id FROM {events} WHERE event_date <= DATE '{last_day}' AND is_bot)"
    ).fetchall()
    return {r[0] for r in rows}


def test_one_score_row_per_eligible_user(pipeline):
    last = pipeline["last_day"]
    scores = _scores(last)
    assert set(scores) == _eligible_users(last)
    assert len(scores) > 100
    assert all(0 <= c <= 1 and 0 <= p <= 1 for c, p, _ in scores.values())
    assert {v for *_, v in scores.values()} == {"1"}


def test_every_insight_table_and_view_holds_the_last_date(pipeline):
    last, wh = pipeline["last_day"], _warehouse()
    n = len(_scores(last))
    per_user = {"user_profiles": 1, "user_embeddings": 1, "user_score_explanations": 6}
    for table, k in per_user.items():
        got = wh.query(f"SELECT count(*) FROM {table} WHERE score_date = ?", [last])[0][0]
        assert got == k * n, table
    for table in ("segment_summary", "model_monitoring", "model_performance_history"):
        assert wh.query(f"SELECT count(*) FROM {table} WHERE score_date = ?", [last])[0][0] > 0
    latest = wh.query(
        "SELECT count(*), count(top_churn_reason), count(segment_description), min(score_date) "
        "FROM analytics.latest_user_scores"
    )[0]
    assert latest == (n, n, n, last)
    health = wh.query("SELECT drift_status, churn_label_status FROM analytics.model_health")
    assert len(health) == 1 and health[0][1] == "pending"
    assert health[0][0] in ("ok", "warn")  # the run succeeded, so nothing failed
    user = wh.query("SELECT min(user_id) FROM user_embeddings WHERE score_date = ?", [last])[0][0]
    alike = wh.query(
        f"SELECT * FROM analytics.lookalike_users('sample_clickstream', '{user}', DATE '{last}', 5)"
    )
    assert len(alike) == 5 and user not in {r[0] for r in alike}
    report = Settings.from_env().reports_dir / last.isoformat() / "sample_clickstream.html"
    assert "nightly scores for" in report.read_text()


def test_bots_stay_in_the_lake_but_are_not_scored(pipeline):
    lake = Settings.from_env().source_lake("sample_clickstream")
    bots = duckdb.sql(
        f"SELECT DISTINCT user_id FROM read_parquet('{lake}/sessionized_events/*/*.parquet') WHERE is_bot"
    ).fetchall()
    assert {r[0] for r in bots} == {"b00000", "b00001", "b00002"}
    assert not {r[0] for r in bots} & set(_scores(pipeline["last_day"]))
    flagged = _warehouse().query(
        "SELECT count(*), sum(bot_users), sum(bot_events) FROM etl_bot_activity "
        "WHERE source = 'sample_clickstream' AND event_date >= ?",
        [START],
    )[0]
    # One row per event date; each flagged user-day has more than 60 events within one minute
    # (the mapping's threshold).
    assert flagged[0] == DAYS
    assert flagged[1] > 0 and flagged[2] > 60 * flagged[1]


def test_no_personal_value_reaches_lake_quarantine_or_warehouse(pipeline):
    import json

    raw = Settings.from_env().raw_dir / "sample_clickstream"
    personal = set()
    for f in sorted(raw.glob("date=*/events.jsonl"))[:5]:
        for line in f.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            personal |= {row["email"], row["ip"]}
    assert len(personal) > 100
    data = Settings.from_env().data_dir
    written = [p for p in (data / "lake").rglob("*") if p.is_file()] + [data / "warehouse.duckdb"]
    blob = b"".join(p.read_bytes() for p in written)
    assert not [v for v in personal if v.encode() in blob]


def test_every_raw_row_is_accounted_for(pipeline):
    import json

    manifest = json.loads(
        (Settings.from_env().raw_dir / "sample_clickstream" / "_manifest.json").read_text()
    )
    rows = _warehouse().query(
        "SELECT count(*), sum(raw_rows), sum(unaccounted_rows), sum(clean_rows) FROM etl_run_summary"
    )[0]
    assert rows[0] == DAYS
    assert rows[1] == sum(f["raw_rows"] for f in manifest["files"].values())
    assert rows[2] == 0
    assert rows[3] == sum(f.get("clean", 0) for f in manifest["files"].values())


def test_champion_is_registered(pipeline):
    import mlflow

    from behavior_model.registry import configure_mlflow

    settings = Settings.from_env()
    configure_mlflow(settings)
    name = "behavior-model-sample_clickstream"
    champion = mlflow.MlflowClient().get_model_version_by_alias(name, "champion")
    assert str(champion.version) == "1"
    text = report(settings=settings, source="sample_clickstream", last_day=pipeline["last_day"])
    assert "unaccounted                    0" in text and "validation purchase ROC-AUC" in text


def test_reruns_replace_and_never_duplicate(pipeline):
    from airflow.models import DagBag

    from pipeline.settings import DAGS_DIR

    last = pipeline["last_day"]
    before = _scores(last)
    lake = Settings.from_env().source_lake("sample_clickstream")
    count_sql = f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet('{lake}/sessionized_events/*/*.parquet')"
    lake_before = duckdb.sql(count_sql).fetchall()

    dags = DagBag(dag_folder=str(DAGS_DIR)).dags
    day = RERUN_DAY
    run = run_in_process(
        dags["clickstream_daily"],
        logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"),
    )
    assert run.state == "success"
    run = run_in_process(
        dags["nightly_scoring"],
        run_conf={"source": "sample_clickstream", "score_date": last.isoformat()},
    )
    assert run.state == "success"

    after = _scores(last)
    assert set(after) == set(before)
    assert all(after[u][:2] == pytest.approx(before[u][:2], abs=1e-6) for u in before)
    assert duckdb.sql(count_sql).fetchall() == lake_before
    n = _warehouse().query(
        "SELECT count(*) FROM user_propensity_scores WHERE score_date = ?", [last]
    )
    assert n[0][0] == len(before)


def test_every_gate_of_every_run_leaves_its_data_docs(pipeline):
    site = Settings.from_env().data_docs_dir / "sample_clickstream"
    days = sorted(p.name for p in (site / "runs").iterdir() if p.is_dir())
    # A run's pages sit under its run date: the backfill's last day, then each daily run's, and
    # the backfilled day test_reruns ran again, where that test ran first.
    runs = {(START + timedelta(days=k)).isoformat() for k in range(BACKFILL_DAYS - 1, DAYS)}
    assert runs <= set(days) <= runs | {RERUN_DAY.isoformat()}
    suites = ("run_summary", "quarantined_rows", "clean_events", "sessionized_events")
    for day in days:
        for suite in suites:
            assert (site / "runs" / day / f"{suite}.json").exists()
            assert (site / "runs" / day / f"{suite}.html").exists()
    index = (site / "index.html").read_text()
    assert index.count("'>passed (") == len(days) * len(suites)
    # One site per source: the static assets once, not per page (was ~4 MB per date and gate).
    size = sum(f.stat().st_size for f in site.rglob("*") if f.is_file())
    assert size < 8 * 2**20 + len(days) * len(suites) * 200 * 2**10
