"""The one place that reads the environment and picks where the pipeline reads and writes.

Local runs (the default) keep everything under the repository's ``data/`` folder: the raw files, the
lake, the DuckDB warehouse, MLflow's SQLite store and artifacts, and AIRFLOW_HOME. Production sets
the environment variables below (docker-compose.yaml does) and the same code follows.

Entry points (DAG tasks, CLIs, the demo) call ``Settings.from_env()`` once and pass the result
down; no module below them reads ``os.environ`` (``tests/test_import_graph.py`` checks it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_DIR = REPO_ROOT / "dags"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    # One URL picks the warehouse: duckdb:///path/to/file.duckdb or postgresql://user@host/db.
    warehouse_url: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    mlflow_experiment: str = "behavior-model"
    # Each source has its own registered model (and so its own champion): <prefix>-<source>.
    registered_model_prefix: str = "behavior-model"
    # Spark: local[2] on a laptop, spark://host:7077 for a standalone cluster.
    spark_master: str = "local[2]"
    # Daily volumes are small; a few shuffle partitions beat Spark's default 200.
    spark_shuffle_partitions: int = 4
    spark_driver_memory: str = "4g"
    # The host name executors on other machines reach the driver at (a container's name); None =
    # local mode, nothing to advertise.
    spark_driver_host: str | None = None
    # Key for HMAC-SHA256 of personal identifiers (mapping ``pii_hash_columns``); None = unset,
    # and a mapping that needs it fails with a message naming PIPELINE_PII_SECRET.
    pii_secret: str | None = None
    # The DAGs' default ``source`` param.
    default_source: str = "sample_clickstream"
    # Data Docs keep the gates' pages of this many run dates before the newest run (counted in
    # run dates, never from "now").
    data_docs_retention_days: int = 90
    # ``warehouse init`` on PostgreSQL creates this read-only role for analysts, with this password;
    # no password = no role (init says so).
    warehouse_analyst_role: str = "analyst"
    warehouse_analyst_password: str | None = None

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def data_docs_dir(self) -> Path:
        return self.data_dir / "data_docs"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def airflow_home(self) -> Path:
        return self.data_dir / "airflow"

    def source_lake(self, source: str) -> Path:
        return self.lake_dir / source

    def registered_model_name(self, source: str) -> str:
        return f"{self.registered_model_prefix}-{source}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("PIPELINE_DATA_DIR", REPO_ROOT / "data")).resolve()
        return cls(
            data_dir=data_dir,
            warehouse_url=env.get("WAREHOUSE_URL", f"duckdb:///{data_dir / 'warehouse.duckdb'}"),
            mlflow_tracking_uri=env.get(
                "MLFLOW_TRACKING_URI", f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"
            ),
            mlflow_artifact_root=env.get(
                "MLFLOW_ARTIFACT_ROOT", (data_dir / "mlflow" / "artifacts").as_uri()
            ),
            spark_master=env.get("SPARK_MASTER", "local[2]"),
            spark_shuffle_partitions=int(env.get("SPARK_SHUFFLE_PARTITIONS", "4")),
            spark_driver_memory=env.get("SPARK_DRIVER_MEMORY", "4g"),
            spark_driver_host=env.get("SPARK_DRIVER_HOST") or None,
            pii_secret=env.get("PIPELINE_PII_SECRET") or None,
            default_source=env.get("PIPELINE_SOURCE", "sample_clickstream"),
            data_docs_retention_days=int(env.get("DATA_DOCS_RETENTION_DAYS", "90")),
            warehouse_analyst_role=env.get("WAREHOUSE_ANALYST_ROLE", "analyst"),
            warehouse_analyst_password=env.get("WAREHOUSE_ANALYST_PASSWORD") or None,
        )


def process_env(data_dir: Path) -> dict[str, str]:
    """Variables the libraries read themselves (Airflow, MLflow, Spark, Hugging Face), so that a
    local run keeps every write under ``data_dir`` and never reaches for the network.

    Declared once: the demo, the tests and the CLIs apply it; the Makefile does not repeat it.
    """
    return {
        "PIPELINE_DATA_DIR": str(data_dir),
        "AIRFLOW_HOME": str(data_dir / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "SPARK_LOCAL_IP": "127.0.0.1",
        # The Python that Spark's Python workers (mapInArrow scoring) run: this interpreter, with
        # the project's packages. On a cluster, set it to that path on the workers.
        "PYSPARK_PYTHON": sys.executable,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def apply_process_env(
    environ: dict[str, str] | None = None, *, defaults: Mapping[str, str] | None = None
) -> Settings:
    """Fill in ``process_env`` (and ``defaults``) where the caller has not set a variable; return
    the settings. Call it first in an entry point, before Airflow or MLflow is imported.
    """
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("PIPELINE_DATA_DIR", REPO_ROOT / "data")).resolve()
    for k, v in (process_env(data_dir) | dict(defaults or {})).items():
        env.setdefault(k, v)
    return Settings.from_env(env)


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment plus ``extra``, for a child process (``airflow standalone``)."""
    return dict(os.environ) | extra


@contextmanager
def environment_unchanged(*names: str) -> Iterator[None]:
    """Undo what a library writes to these variables inside the block.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``; left there, the next
    ``Settings.from_env()`` in the same process (``dag.test()``, the tests) would follow the last
    store configured instead of its own settings.
    """
    before = {n: os.environ.get(n) for n in names}
    try:
        yield
    finally:
        for n, v in before.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v
