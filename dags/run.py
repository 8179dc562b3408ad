"""Run one DAG in this process from a shell, with params, as Airflow's ``dag.test()`` does.

    python -m dags.run clickstream_backfill source=online_retail path=/data/online_retail.csv.gz \\
        from_date=2010-12-01 to_date=2011-12-09

Every task runs with the same code and gates as under the scheduler; a failed task fails the
command (exit 1). Not a DAG file (``dags/.airflowignore``).
"""

from __future__ import annotations

import argparse
import sys
import time

_MIGRATED: set[str] = set()


def migrate_airflow_db() -> None:
    """Create or upgrade Airflow's metadata database and the ``spark`` pool (both idempotent),
    once per process and database (two Airflow CLI processes: seconds each).

    The pool bounds how many Spark tasks run at once under the scheduler (a backfill of many
    days); ``airflow standalone`` on the same AIRFLOW_HOME finds it there.
    """
    import subprocess

    from airflow.configuration import conf

    from pipeline.assets import SPARK_POOL

    database = conf.get("database", "sql_alchemy_conn")  # the one this process's runs use
    if database in _MIGRATED:
        return

    airflow = [sys.executable, "-m", "airflow"]
    for cmd in (
        [*airflow, "db", "migrate"],
        [*airflow, "pools", "set", SPARK_POOL, "1", "Spark jobs: one Spark application at a time"],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[2:])} failed:\n{done.stderr[-3000:]}")
    _MIGRATED.add(database)


def run_in_process(dag, **kwargs):
    """``dag.test(**kwargs)`` with every task's retries off: a failed task ends the run at once.

    Retries belong to a scheduler (a later try in a new process). In this process a retry only
    waits out the DAG's ``retry_delay`` (minutes of "No tasks to run. unrunnable tasks" once a
    second) to meet the same state again: a demo whose Spark JVM died looked hung, not failed.
    """
    for task in dag.tasks:
        task.retries = 0
    return dag.test(**kwargs)


def run_dag(dag_id: str, conf: dict, *, logical_date=None) -> str:
    """Run ``dag_id`` once with ``conf`` as params; returns the final state."""
    from airflow.models import DagBag

    from pipeline.settings import DAGS_DIR

    migrate_airflow_db()
    bag = DagBag(dag_folder=str(DAGS_DIR))
    if dag_id not in bag.dags:
        raise SystemExit(
            f"no DAG {dag_id!r}; known: {sorted(bag.dags)}; errors: {bag.import_errors}"
        )
    kwargs = {"run_conf": conf}
    if logical_date is not None:
        kwargs["logical_date"] = logical_date
    return run_in_process(bag.dags[dag_id], **kwargs).state


def main(argv: list[str] | None = None) -> None:
    from pipeline.settings import apply_process_env

    apply_process_env()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dag_id")
    p.add_argument("params", nargs="*", help="name=value")
    a = p.parse_args(argv)
    conf = dict(kv.split("=", 1) for kv in a.params)
    t0 = time.time()
    state = run_dag(a.dag_id, conf)
    print(f"{a.dag_id} {conf}: {state} in {time.time() - t0:.0f}s")
    if state != "success":
        sys.exit(1)


if __name__ == "__main__":
    main()
