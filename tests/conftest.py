"""Test session set-up: every write goes to a temporary data folder; one Spark session for all.

Environment variables are set at import, before anything imports Airflow or MLflow, from the one
declaration in ``pipeline.settings.process_env``.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.settings import Settings, process_env

_DATA = Path(tempfile.mkdtemp(prefix="pipeline-tests-"))
# mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI, which Settings.from_env would follow.
_STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "WAREHOUSE_URL")
for _var in ("WAREHOUSE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_ARTIFACT_ROOT", "SPARK_MASTER"):
    os.environ.pop(_var, None)
os.environ.update(process_env(_DATA) | {"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _DATA


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The session's settings (a temporary data folder)."""
    return Settings.from_env()


@pytest.fixture(autouse=True)
def _session_stores(monkeypatch):
    """Every test starts on the session's data folder, whatever an earlier test pointed MLflow at."""
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(_DATA))
    for var in _STORE_VARIABLES:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def spark(settings):
    """One local Spark session for the whole test run (start-up costs ~8 s)."""
    from jobs.spark import get_spark

    session = get_spark(
        replace(settings, spark_master="local[1]", spark_shuffle_partitions=1), "tests"
    )
    yield session
    session.stop()


def use_data_dir(monkeypatch, data_dir: Path) -> Settings:
    """Point every store (lake, warehouse, MLflow) at ``data_dir`` for the rest of the test."""
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(data_dir))
    for var in _STORE_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    return Settings.from_env()


@pytest.fixture
def isolated_settings(tmp_path, monkeypatch) -> Settings:
    """Settings on a fresh data folder (lake, warehouse, MLflow) for one test."""
    return use_data_dir(monkeypatch, tmp_path)


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards; the test is skipped, with
    the reason, where no server answers."""
    psycopg = pytest.importorskip("psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as con:
            con.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}: {e}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
