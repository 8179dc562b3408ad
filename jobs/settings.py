"""The one place that picks where the pipeline reads and writes.

Local runs (the default) keep everything under the repository's ``data/`` folder: the raw files, the
lake, the DuckDB warehouse, MLflow's SQLite store and artifacts, and AIRFLOW_HOME. Production sets
the environment variables below (docker-compose.yaml does) and the same code follows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    # One URL picks the warehouse: duckdb:///path/to/file.duckdb or postgresql://user@host/db.
    warehouse_url: str
    mlflow_tracking_uri: str
    mlflow_artifact_root: str
    mlflow_experiment: str = "behavior-model"
    registered_model_name: str = "behavior-model"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def data_docs_dir(self) -> Path:
        return self.data_dir / "data_docs"

    def source_lake(self, source: str) -> Path:
        return self.lake_dir / source


def get_settings() -> Settings:
    data_dir = Path(os.environ.get("PIPELINE_DATA_DIR", REPO_ROOT / "data")).resolve()
    return Settings(
        data_dir=data_dir,
        warehouse_url=os.environ.get("WAREHOUSE_URL", f"duckdb:///{data_dir / 'warehouse.duckdb'}"),
        mlflow_tracking_uri=os.environ.get(
            "MLFLOW_TRACKING_URI", f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"
        ),
        mlflow_artifact_root=os.environ.get(
            "MLFLOW_ARTIFACT_ROOT", (data_dir / "mlflow" / "artifacts").as_uri()
        ),
    )
