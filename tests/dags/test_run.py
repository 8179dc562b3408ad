"""Running a DAG in this process (`make demo`, `python -m dags.run`): a failure ends the run."""

from __future__ import annotations

from dags.run import migrate_airflow_db, run_in_process


def test_a_failed_task_ends_the_run_at_once_instead_of_waiting_out_its_retries():
    """Bug: a `make demo` whose Spark JVM had died logged "No tasks to run" once a second instead
    of failing: the failed task was up for retry 5 minutes later, twice, in a process whose state
    a retry cannot change."""
    from airflow.models import DagBag

    from pipeline.settings import DAGS_DIR

    migrate_airflow_db()
    dag = DagBag(dag_folder=str(DAGS_DIR)).dags["nightly_scoring"]
    first = dag.task_dict["resolve_score_targets"]
    assert first.retries == 2  # the DAG's own, for a scheduler

    def spark_is_gone(**_):
        raise RuntimeError("Spark's JVM is gone")

    first.python_callable = spark_is_gone
    run = run_in_process(dag, run_conf={"source": "sample_clickstream", "score_date": "2026-02-19"})
    assert run.state == "failed"
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    assert (tis["resolve_score_targets"].state, tis["resolve_score_targets"].try_number) == (
        "failed",
        1,
    )
    assert tis["score_users"].state == "upstream_failed"
