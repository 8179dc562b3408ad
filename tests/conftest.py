"""Test session set-up: every write goes to a temporary data folder; one Spark session for all.

Environment variables are set at import, before anything imports Airflow or MLflow.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_DATA = Path(tempfile.mkdtemp(prefix="pipeline-tests-"))
os.environ.update(
    {
        "PIPELINE_DATA_DIR": str(_DATA),
        "AIRFLOW_HOME": str(_DATA / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parents[1] / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
)
os.environ.pop("WAREHOUSE_URL", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _DATA


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole test run (start-up costs ~8 s)."""
    os.environ["SPARK_SHUFFLE_PARTITIONS"] = "1"
    from jobs.spark import get_spark

    session = get_spark("tests", master="local[1]")
    yield session
    session.stop()


@pytest.fixture
def isolated_data_dir(tmp_path, monkeypatch) -> Path:
    """A fresh data folder (lake, warehouse, MLflow) for one test."""
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    return tmp_path
