"""`make demo` (``python -m dags.demo``): the whole pipeline on the embedded sample, through the
real Airflow DAGs. Not a DAG file (``dags/.airflowignore``): it drives the DAGs.

1. generates the seeded sample clickstream (75 days, 2,000 users) under data/raw/;
2. loads the first 70 days as one ``clickstream_backfill`` run, as a new source's history is
   onboarded, then runs the ``clickstream_daily`` DAG for each of the last 5 days, as every night
   after (both: clean -> GX gate -> sessionize -> gate; the daily runs pick up the backfill's
   late-event window);
3. ``warehouse init``: tables, the ``analytics`` views and the look-alike function;
4. runs ``behavior_model_training`` as of day 52 (MLflow run, registry, champion alias);
5. runs ``nightly_scoring`` for every day from day 52 to the last, as production does each night:
   scores, profiles, segments, reasons, drift, and realised performance for the dates whose
   labels have matured by then (the model never saw those outcomes);
6. prints rows per stage, quarantined rows by reason, validation ROC-AUC, who is at risk and why,
   the segments, model health, the report's path and the SQL to query them.

Each DAG runs in this process with ``dag.test()`` (Airflow's own executor-less runner), so one
Spark session serves all days. Rerunning the demo replaces every output; nothing is duplicated.
"""

from __future__ import annotations

import sys
import time
from datetime import date, timedelta
from pathlib import Path

from dags.run import migrate_airflow_db, run_in_process
from pipeline.settings import DAGS_DIR, Settings, apply_process_env


def run_pipeline(
    *,
    data_dir: Path,
    start: date,
    days: int,
    users: int,
    score_days: int = 1,
    backfill_days: int = 0,
    source: str = "sample_clickstream",
    log=print,
) -> dict:
    """Generate the sample and run the DAGs; returns what happened. Env must be set first.

    The first ``backfill_days`` days load as one ``clickstream_backfill`` run (history, as a new
    source is onboarded), the rest one ``clickstream_daily`` run each. Training runs as of the
    first of the last ``score_days`` days; scoring runs for each of them.
    """
    import pendulum
    from airflow.models import DagBag

    from pipeline.sample_data import SampleConfig, generate
    from pipeline.warehouse import Warehouse

    raw = data_dir / "raw" / source
    generate(raw, SampleConfig(start=start, days=days, users=users))
    log(f"sample: {days} days x {users} users -> {raw}")
    migrate_airflow_db()
    dags = DagBag(dag_folder=str(DAGS_DIR)).dags

    def test(dag_id: str, **kwargs):
        t0 = time.time()
        run = run_in_process(dags[dag_id], **kwargs)
        if run.state != "success":
            failed = sorted(ti.task_id for ti in run.get_task_instances() if ti.state == "failed")
            raise RuntimeError(
                f"{dag_id} {kwargs}: run ended {run.state}; failed: {failed}; see their logs above"
            )
        return time.time() - t0

    last = start + timedelta(days=days - 1)
    t0 = time.time()
    if backfill_days:
        until = start + timedelta(days=backfill_days - 1)
        took = test(
            "clickstream_backfill",
            run_conf={"source": source, "path": "", "from_date": start.isoformat(), "to_date": until.isoformat()},
        )  # fmt: skip
        log(f"clickstream_backfill {start} to {until}: success in {took:.1f}s")
    for k in range(backfill_days, days):
        day = start + timedelta(days=k)
        took = test(
            "clickstream_daily",
            logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"),
        )
        log(f"clickstream_daily {day}: success in {took:.1f}s")
    etl_s = time.time() - t0
    for line in Warehouse(Settings.from_env().warehouse_url).init():
        log(f"warehouse init: {line}")
    train_day = last - timedelta(days=score_days - 1)
    train_s = test(
        "behavior_model_training",
        logical_date=pendulum.datetime(train_day.year, train_day.month, train_day.day, tz="UTC"),
    )
    log(f"behavior_model_training as of {train_day}: success in {train_s:.1f}s")
    t0 = time.time()
    for k in range(score_days):
        day = train_day + timedelta(days=k)
        took = test("nightly_scoring", run_conf={"source": source, "score_date": day.isoformat()})
        log(f"nightly_scoring for {day}: success in {took:.1f}s")
    score_s = time.time() - t0
    return {
        "last_day": last,
        "train_day": train_day,
        "etl_s": etl_s,
        "train_s": train_s,
        "score_s": score_s,
    }


def report(*, settings: Settings, source: str, last_day: date) -> str:
    """What the demo produced, read back from the warehouse, the lake and MLflow."""
    import duckdb
    import mlflow

    from behavior_model.registry import configure_mlflow
    from pipeline.warehouse import Warehouse

    s = settings
    wh = Warehouse(s.warehouse_url)
    lake = s.source_lake(source)
    out = []
    raw, clean, quarantined, dup, unacc = wh.query(
        "SELECT sum(raw_rows), sum(clean_rows), sum(quarantined_rows), sum(duplicate_rows), "
        "sum(unaccounted_rows) FROM etl_run_summary WHERE source = ?",
        [source],
    )[0]
    con = duckdb.connect()
    lake_rows = con.execute(
        f"SELECT count(*) FROM read_parquet('{lake}/events/*/*.parquet')"
    ).fetchall()[0][0]
    sess = con.execute(
        f"SELECT count(*), count(DISTINCT session_id) FROM read_parquet('{lake}/sessionized_events/*/*.parquet')"
    ).fetchall()[0]
    out.append("Rows per stage")
    out.append(f"  raw rows               {raw:>9,}")
    out.append(f"  clean (run summaries)  {clean:>9,}")
    out.append(f"  quarantined            {quarantined:>9,}")
    out.append(f"  duplicates dropped     {dup:>9,}")
    out.append(f"  unaccounted            {unacc:>9,}   (raw = clean + quarantined + duplicate)")
    out.append(f"  lake events            {lake_rows:>9,}")
    out.append(f"  sessionized events     {sess[0]:>9,} in {sess[1]:,} sessions")
    out.append("Quarantined rows by reason")
    for reason, n in wh.query(
        "SELECT reason, sum(rows) FROM etl_quarantine_counts WHERE source = ? GROUP BY reason ORDER BY 2 DESC",
        [source],
    ):
        out.append(f"  {reason:<22} {n:>9,}")

    configure_mlflow(s)
    client = mlflow.MlflowClient()
    model_name = s.registered_model_name(source)
    champion = client.get_model_version_by_alias(model_name, "champion")
    run = client.get_run(champion.run_id)
    m = run.data.metrics
    out.append(f"Champion: {model_name} version {champion.version} (run {champion.run_id})")
    for label in ("purchase", "churn"):
        out.append(
            f"  validation {label:<8} ROC-AUC {m[f'val_{label}_roc_auc']:.3f}  "
            f"PR-AUC {m[f'val_{label}_pr_auc']:.3f}  log loss {m[f'val_{label}_log_loss']:.3f}  "
            f"(positive rate {m[f'val_{label}_positive_rate']:.2f}, {int(m[f'val_{label}_n_users'])} users)"
        )
    n = wh.query(
        "SELECT count(*) FROM user_propensity_scores WHERE source = ? AND score_date = ?",
        [source, last_day],
    )[0][0]
    sql = (
        "SELECT user_id, round(churn_probability, 3) AS churn, top_churn_reason,\n"
        "       segment_description\n"
        "FROM analytics.latest_user_scores\n"
        f"WHERE source = '{source}'\n"
        "ORDER BY churn_probability DESC\nLIMIT 5;"
    )
    out.append(f"Scores for {last_day}: {n:,} users. Highest churn risk, and why:")
    for user, churn, reason, segment in wh.query(sql):
        out.append(f"  {user}  churn {churn:.3f}  {reason}  [{segment}]")
    out.append("Segments:")
    for sid, users, c, p, text in wh.query(
        "SELECT segment_id, users, mean_churn_probability, mean_purchase_probability, "
        "description FROM segment_summary WHERE source = ? AND score_date = ? ORDER BY segment_id",
        [source, last_day],
    ):
        mean = f"churn {c:.2f}  purchase {p:.2f}" if users else "empty"
        out.append(f"  {sid}  {users:>5,} users  {mean}  {text}")
    out.append("Model health (analytics.model_health):")
    for day, status, drifting, churn_auc, purchase_auc in wh.query(
        "SELECT score_date, drift_status, drifting, realised_churn_roc_auc, "
        "realised_purchase_roc_auc FROM analytics.model_health WHERE source = ? "
        "ORDER BY score_date",
        [source],
    ):
        realised = "  ".join(
            f"{label} ROC-AUC {v:.3f}" if v is not None else f"{label} pending"
            for label, v in (("churn", churn_auc), ("purchase", purchase_auc))
        )
        out.append(f"  {day}  drift {status:<5} {realised}  {drifting or ''}")
    out.append(f"Report: {s.reports_dir / last_day.isoformat() / f'{source}.html'}")
    out.append("Query it yourself (read-only):")
    out.append(
        f"  {sys.executable} -c \"import duckdb; print(duckdb.connect('{s.data_dir}/warehouse.duckdb', read_only=True).sql('''"
    )
    out.append("    " + sql.replace("\n", "\n    ") + "'''))\"")
    out.append(
        "  More questions and their SQL: README.md, 'The warehouse: tables, views, and the questions analysts ask'"
    )
    out.append(f"  MLflow UI:  mlflow ui --backend-store-uri {s.mlflow_tracking_uri}")
    out.append("  Airflow UI: AIRFLOW_HOME=data/airflow airflow standalone  (see README)")
    return "\n".join(out)


# The sample: 75 days; its history as one backfill run, the last 5 days (more than the
# mapping's 2-day lateness window) as daily runs; the last 24 days scored.
DEMO_DAYS, DEMO_BACKFILL_DAYS, DEMO_SCORE_DAYS = 75, 70, 24


def main() -> None:
    # Task logs at WARNING on the console: the demo prints its own summary of each run.
    settings = apply_process_env(defaults={"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})
    t0 = time.time()
    result = run_pipeline(
        data_dir=settings.data_dir, start=date(2026, 1, 1), days=DEMO_DAYS, users=2000,
        score_days=DEMO_SCORE_DAYS, backfill_days=DEMO_BACKFILL_DAYS,
    )  # fmt: skip
    print()
    print(report(settings=settings, source="sample_clickstream", last_day=result["last_day"]))
    print(
        f"\nDemo wall time {time.time() - t0:.0f}s (backfill of {DEMO_BACKFILL_DAYS} days and "
        f"daily DAG x{DEMO_DAYS - DEMO_BACKFILL_DAYS} {result['etl_s']:.0f}s, "
        f"training {result['train_s']:.0f}s, "
        f"nightly scoring x{DEMO_SCORE_DAYS} {result['score_s']:.0f}s)"
    )


if __name__ == "__main__":
    main()
