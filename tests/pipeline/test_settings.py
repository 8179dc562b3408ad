"""Settings: one reader of the environment; local defaults under data/; production by variables."""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import REPO_ROOT, Settings, apply_process_env, process_env


def test_local_defaults_keep_everything_under_the_data_folder():
    s = Settings.from_env({})
    assert s.data_dir == (REPO_ROOT / "data").resolve()
    assert s.warehouse_url == f"duckdb:///{s.data_dir / 'warehouse.duckdb'}"
    assert s.mlflow_tracking_uri == f"sqlite:///{s.data_dir / 'mlflow' / 'mlflow.db'}"
    assert (s.spark_master, s.pii_secret, s.default_source) == (
        "local[2]",
        None,
        "sample_clickstream",
    )
    assert s.registered_model_name("online_retail") == "behavior-model-online_retail"


def test_production_variables_are_followed(tmp_path):
    s = Settings.from_env({
        "PIPELINE_DATA_DIR": str(tmp_path), "WAREHOUSE_URL": "postgresql://u@db/wh",
        "SPARK_MASTER": "spark://m:7077", "SPARK_SHUFFLE_PARTITIONS": "16",
        "PIPELINE_PII_SECRET": "k", "PIPELINE_SOURCE": "online_retail",
    })  # fmt: skip
    assert s.data_dir == tmp_path and s.warehouse_url == "postgresql://u@db/wh"
    assert (s.spark_master, s.spark_shuffle_partitions, s.pii_secret) == ("spark://m:7077", 16, "k")
    assert s.default_source == "online_retail"
    assert s.source_lake("x") == tmp_path / "lake" / "x"


def test_process_env_fills_in_only_what_is_unset(tmp_path):
    env = {"PIPELINE_DATA_DIR": str(tmp_path), "AIRFLOW_HOME": "/elsewhere"}
    settings = apply_process_env(env)
    assert env["AIRFLOW_HOME"] == "/elsewhere"  # the caller's choice wins
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true" and env["HF_HUB_OFFLINE"] == "1"
    assert Path(env["AIRFLOW__CORE__DAGS_FOLDER"]).name == "dags"
    assert settings.data_dir == tmp_path
    assert set(process_env(tmp_path)) <= set(env)


def test_configuring_mlflow_leaves_the_environment_to_the_settings(tmp_path, monkeypatch):
    """MLflow exports MLFLOW_TRACKING_URI when told a store; the next settings must not follow it."""
    from behavior_model.registry import configure_mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "a"))
    configure_mlflow(Settings.from_env())
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path / "b"))
    assert (
        Settings.from_env().mlflow_tracking_uri
        == f"sqlite:///{tmp_path / 'b' / 'mlflow' / 'mlflow.db'}"
    )
