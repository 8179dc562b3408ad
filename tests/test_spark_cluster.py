"""A real Spark standalone cluster: a master and a worker started as compose starts them, and
nightly scoring (example shard, model pass on the executors, profiles) run against spark://...
in its own driver process, the way an Airflow task runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pyspark
import pytest

from behavior_model import registry
from behavior_model.config import TrainConfig
from behavior_model.train import run_training
from pipeline.context import RunContext
from pipeline.lake import read_partitions, without_bots
from pipeline.sample_data import SampleConfig, canonical_events
from pipeline.settings import child_env
from pipeline.source_mapping import load_mapping
from tests.behavior_model.conftest import write_sessionized
from tests.conftest import use_data_dir

pytestmark = pytest.mark.slow
SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"
SCORE_DATE = date(2026, 2, 19)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _start(argv: list[str], tmp: Path) -> subprocess.Popen:
    env = child_env(
        SPARK_HOME=str(SPARK_CLASS.parent.parent), SPARK_LOCAL_IP="127.0.0.1",
        SPARK_WORKER_DIR=str(tmp / "work"), SPARK_LOG_DIR=str(tmp / "logs"),
    )  # fmt: skip
    return subprocess.Popen(
        [str(SPARK_CLASS), *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """spark://127.0.0.1:<port> with one ALIVE worker of 2 cores; yields (url, master web URL)."""
    tmp = tmp_path_factory.mktemp("cluster")
    port, web, worker_web = _free_port(), _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    procs = [
        _start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
                str(port), "--webui-port", str(web)], tmp),
    ]  # fmt: skip
    try:
        deadline = time.time() + 90
        state: dict = {}
        while time.time() < deadline:
            try:
                state = _json(f"http://127.0.0.1:{web}/json/")
                if state.get("status") == "ALIVE":
                    break
            except OSError:
                pass
            time.sleep(0.5)
        procs.append(
            _start(["org.apache.spark.deploy.worker.Worker", url, "--cores", "2", "--memory",
                    "3g", "--webui-port", str(worker_web)], tmp)
        )  # fmt: skip
        while time.time() < deadline and state.get("aliveworkers", 0) < 1:
            time.sleep(0.5)
            state = _json(f"http://127.0.0.1:{web}/json/")
        assert state.get("aliveworkers") == 1, state
        yield url, f"http://127.0.0.1:{web}"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    settings = use_data_dir(mp, tmp_path_factory.mktemp("cluster-data"))
    ctx = RunContext(settings, load_mapping("sample_clickstream"), SCORE_DATE)
    events = canonical_events(SampleConfig(days=50, users=200, seed=11))
    write_sessionized(ctx.lake, events)
    fast = TrainConfig(pretrain_epochs=0, epochs=1, calibrate=False, lightgbm_margin=None)
    result = run_training(ctx, replace(fast, model=replace(fast.model, use_text=False)))
    registry.set_champion(ctx.registered_model_name, result["model_version"])
    yield ctx, result["model_version"]
    mp.undo()


def test_nightly_scoring_runs_on_a_standalone_cluster(cluster, champion):
    url, web = cluster
    ctx, version = champion
    env = child_env(
        PIPELINE_DATA_DIR=str(ctx.settings.data_dir), SPARK_MASTER=url,
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )  # fmt: skip
    env.pop("PYSPARK_PYTHON", None)  # the executors' Python comes from process_env, as in a task
    proc = subprocess.run(
        [sys.executable, "-m", "behavior_model.score", "--source", ctx.source, "--score-date",
         SCORE_DATE.isoformat(), "--json"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    assert lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    assert result["model_version"] == version

    # The application ran on the cluster (the master lists it), not in a local[*] fallback.
    apps = _json(f"{web}/json/")
    names = [a["name"] for a in apps.get("completedapps", []) + apps.get("activeapps", [])]
    assert "nightly-scoring" in names, names

    # The same scores as the model computes in this process from the same lake.
    rows = pd.DataFrame(
        ctx.warehouse.query(
            "SELECT user_id, churn_probability, purchase_probability FROM "
            "user_propensity_scores WHERE source = ? AND score_date = ? ORDER BY user_id",
            [ctx.source, SCORE_DATE],
        ),
        columns=["user_id", "churn", "purchase"],
    )
    events = without_bots(read_partitions(ctx.lake.sessionized_events, end=SCORE_DATE))
    cutoff = pd.Timestamp(SCORE_DATE, tz="UTC") + pd.Timedelta(days=1)
    expected = (
        registry.load_version(ctx.registered_model_name, version)
        .predict_users(events, cutoff)
        .sort_values("user_id")
    )
    assert result["rows"] == len(rows) == len(expected) > 50
    assert list(rows["user_id"]) == list(expected["user_id"])
    assert rows["churn"].to_numpy() == pytest.approx(expected["churn_probability"], abs=1e-6)
    assert rows["purchase"].to_numpy() == pytest.approx(expected["purchase_probability"], abs=1e-6)
    explained = ctx.warehouse.query(
        "SELECT count(*) FROM user_score_explanations WHERE source = ? AND score_date = ?",
        [ctx.source, SCORE_DATE],
    )[0][0]
    assert explained == 6 * len(rows)
    assert os.path.isdir(ctx.lake.examples / f"cutoff_date={SCORE_DATE.replace(day=20)}")
