"""Assets and defaults shared by the DAGs. Imports nothing heavy: parsed on every DAG-file scan."""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Asset

# The source the DAGs process unless a run's params say otherwise (a mapping in jobs/sources/).
DEFAULT_SOURCE = os.environ.get("PIPELINE_SOURCE", "sample_clickstream")

# Emitted by clickstream_daily when a day's sessionized events are in the lake; extra carries
# {"source", "run_date"}. nightly_scoring runs on it.
SESSIONIZED_EVENTS = Asset(name="lake_sessionized_events", uri="file:///lake/sessionized_events")
# Emitted by behavior_model_training after a registered model version is logged.
BEHAVIOR_MODEL = Asset(name="behavior_model_registry", uri="file:///mlflow/behavior-model")

DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
}
