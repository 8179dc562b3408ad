"""docker-compose.yaml stays consistent with the code, and each service's command really runs.

There is no Docker engine on the build machine, so the services' commands run here, outside a
container, against local stand-ins (SQLite or the local PostgreSQL, a free port).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def _command(service: dict) -> list[str]:
    return shlex.split(" ".join(service["command"].split()))


def test_services_and_shared_environment(compose):
    services = compose["services"]
    assert {"postgres", "mlflow", "spark-master", "spark-worker", "airflow-init", "airflow-api-server",
            "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"} <= set(services)  # fmt: skip
    env = services["airflow-scheduler"]["environment"]
    # Every variable the code reads to pick production resources is set for the workers.
    code = (REPO / "pipeline" / "settings.py").read_text()
    for var in (
        "PIPELINE_DATA_DIR",
        "WAREHOUSE_URL",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_ARTIFACT_ROOT",
        "SPARK_MASTER",
    ):
        assert var in env and f'"{var}"' in code, var
    assert env["WAREHOUSE_URL"].startswith("postgresql://")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/pipeline/dags"
    init_sql = (REPO / "docker" / "postgres-init.sql").read_text()
    for db in ("airflow", "mlflow", "warehouse"):
        assert f"CREATE DATABASE {db};" in init_sql


@pytest.mark.parametrize(
    "service",
    [
        "airflow-init",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    ],
)
def test_airflow_commands_exist(compose, service):
    argv = _command(compose["services"][service])
    assert argv[0] == "airflow"
    out = subprocess.run(
        [str(BIN / "airflow"), *argv[1:], "--help"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"usage: airflow {' '.join(argv[1:2])}" in out.stdout.lower()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, seconds: float = 90) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {proc.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {seconds}s")


def test_mlflow_server_command_serves(compose, tmp_path):
    argv = _command(compose["services"]["mlflow"])
    port = _free_port()
    # Same command; the PostgreSQL store and /data volume replaced by SQLite and a temp folder.
    swap = {"--port": str(port), "--host": "127.0.0.1",
            "--backend-store-uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--artifacts-destination": str(tmp_path / "artifacts")}  # fmt: skip
    argv = [
        swap.get(prev, a) if prev in swap else a for prev, a in zip([""] + argv, argv, strict=False)
    ]
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), *argv[1:], "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}"},
    )  # fmt: skip
    try:
        assert _wait_http(f"http://127.0.0.1:{port}/health", proc).strip() == "OK"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_spark_master_command_starts(compose):
    argv = _command(compose["services"]["spark-master"])
    assert argv[0] == "spark-class"
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    port, web = _free_port(), _free_port()
    argv = [
        str(spark_class),
        argv[1],
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--webui-port",
        str(web),
    ]
    env = os.environ | {"SPARK_HOME": str(spark_class.parent.parent), "SPARK_LOCAL_IP": "127.0.0.1"}
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        # The master answers in STANDBY for a moment before it elects itself leader.
        deadline = time.time() + 60
        page = _wait_http(f"http://127.0.0.1:{web}/json/", proc)
        while '"status" : "ALIVE"' not in page and time.time() < deadline:
            time.sleep(0.5)
            page = _wait_http(f"http://127.0.0.1:{web}/json/", proc)
        assert f"spark://127.0.0.1:{port}" in page and '"status" : "ALIVE"' in page
    finally:
        proc.terminate()
        proc.wait(timeout=30)
