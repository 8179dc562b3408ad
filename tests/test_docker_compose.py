"""docker-compose.yaml stays consistent with the code, and each service's command really runs.

There is no Docker engine on the build machine, so the services' commands run here, outside a
container, against local stand-ins (SQLite or the local PostgreSQL, a free port).
"""

from __future__ import annotations

import os
import shlex
import shutil
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
    # Every variable the settings read to pick production resources is set for the workers.
    code = (REPO / "pipeline" / "settings.py").read_text()
    for var in ("PIPELINE_DATA_DIR", "WAREHOUSE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_ARTIFACT_ROOT",
                "SPARK_MASTER", "PIPELINE_PII_SECRET", "SPARK_DRIVER_HOST"):  # fmt: skip
        assert var in env and f'"{var}"' in code, var
    assert env["WAREHOUSE_URL"].startswith("postgresql://")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/pipeline/dags"
    # The Spark driver runs in the scheduler's task processes: executors reach it by host name.
    assert env["SPARK_DRIVER_HOST"] == services["airflow-scheduler"]["hostname"]
    init_sql = (REPO / "docker" / "postgres-init.sql").read_text()
    for db in ("airflow", "mlflow", "warehouse"):
        assert f"CREATE DATABASE {db};" in init_sql


def test_secure_by_default(compose):
    services = compose["services"]
    for name, service in services.items():
        env = service.get("environment", {})
        for var, value in env.items():
            if any(w in var for w in ("PASSWORD", "SECRET", "FERNET")) and not var.endswith(
                "_FILE"
            ):
                assert str(value).startswith("${") and ":?" in str(value), (
                    f"{name}: {var} has a default"
                )
        assert "SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env, name
        # Published ports listen on the loopback only; the database is not published at all.
        assert all(str(p).startswith("127.0.0.1:") for p in service.get("ports", [])), name
    assert "ports" not in services["postgres"]
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__FERNET_KEY"].startswith(
        "${"
    )
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_every_long_running_service_has_a_health_check(compose):
    for name, service in compose["services"].items():
        if name != "airflow-init":  # a one-shot job; the others wait for its completion
            assert "test" in service.get("healthcheck", {}), name


def test_code_is_mounted_for_development(compose):
    volumes = compose["services"]["airflow-scheduler"]["volumes"]
    for package in ("dags", "pipeline", "jobs", "expectations", "behavior_model"):
        assert f"./{package}:/opt/pipeline/{package}" in volumes
    assert "-e ." in (REPO / "Dockerfile").read_text()  # editable: the mounted code is what runs


def _compose_config(env_file: Path) -> subprocess.CompletedProcess:
    cli = shutil.which("docker-compose")
    if cli is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return subprocess.run(
        [cli, "-f", str(REPO / "docker-compose.yaml"), "--env-file", str(env_file), "config"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip


def test_compose_config_validates_with_the_example_env(tmp_path):
    env = tmp_path / ".env"
    env.write_text((REPO / ".env.example").read_text())
    done = _compose_config(env)
    assert done.returncode == 0, done.stderr
    assert "replace-me" in done.stdout and "${" not in done.stdout


def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    env = tmp_path / ".env"
    env.write_text("")
    done = _compose_config(env)
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in done.stderr


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
    command = " ".join(compose["services"][service]["command"].split())
    if command.startswith('bash -c "'):
        command = command.removeprefix('bash -c "').removesuffix('"')
    for part in command.split("&&"):
        argv = shlex.split(part)
        if argv[0] == "warehouse":  # the project's console script (pyproject [project.scripts])
            out = subprocess.run(
                [str(BIN / "warehouse"), "--help"], capture_output=True, text=True, timeout=120
            )
            assert out.returncode == 0 and "init" in out.stdout, out.stderr[-2000:]
            continue
        assert argv[0] == "airflow"
        # The subcommand (two words for the `db` and `pools` groups), then its --help.
        sub = argv[1:3] if argv[1] in ("db", "pools") else argv[1:2]
        out = subprocess.run(
            [str(BIN / "airflow"), *sub, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert f"usage: airflow {argv[1]}" in out.stdout.lower()


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
    # Same command; the /data volume replaced by a temp folder, and the PostgreSQL store the
    # service gets from MLFLOW_BACKEND_STORE_URI by SQLite.
    service_env = compose["services"]["mlflow"]["environment"]
    assert service_env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://pipeline:${")
    swap = {"--port": str(port), "--host": "127.0.0.1",
            "--artifacts-destination": str(tmp_path / "artifacts")}  # fmt: skip
    argv = [
        swap.get(prev, a) if prev in swap else a for prev, a in zip([""] + argv, argv, strict=False)
    ]
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), *argv[1:], "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}",
                          "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
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
