"""Every DAG imports, and carries the docs, tags and retries its users rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {
    "clickstream_daily",
    "clickstream_backfill",
    "behavior_model_training",
    "nightly_scoring",
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.models import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == EXPECTED


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_dag_has_docs_tags_retries(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.fileloc.endswith(f"{dag_id}.py")  # dag_id = file name
    assert dag.tags and dag.doc_md and len(dag.doc_md) > 200
    assert dag.max_active_runs == 1
    assert dag.is_paused_upon_creation is False
    assert dag.tasks and all(t.retries >= 1 for t in dag.tasks)


def test_scoring_follows_fresh_sessionized_events(dagbag):
    from pipeline.assets import SESSIONIZED_EVENTS

    daily, scoring = dagbag.dags["clickstream_daily"], dagbag.dags["nightly_scoring"]
    producer = daily.get_task("validate_sessionized_events")
    assert SESSIONIZED_EVENTS in producer.outlets
    assert SESSIONIZED_EVENTS.name in str(scoring.timetable.asset_condition)


def test_daily_tasks_chain_clean_validate_sessionize(dagbag):
    daily = dagbag.dags["clickstream_daily"]
    order = [t.task_id for t in daily.topological_sort()]
    assert order == [
        "wait_for_export", "clean_events", "validate_clean_events", "sessionize_events",
        "validate_sessionized_events",
    ]  # fmt: skip
    assert {t.task_id for t in daily.tasks if t.pool == "spark"} == {
        "clean_events",
        "sessionize_events",
    }


def test_the_training_dags_defaults_are_the_codes_and_its_params_reach_the_config(dagbag):
    from behavior_model.config import TrainConfig
    from behavior_model.train import config_from_params

    params = dagbag.dags["behavior_model_training"].params.dump()
    assert config_from_params(params) == TrainConfig()  # a UI default never drifts from code
    cfg = config_from_params(
        params | {"token_unit": "basket", "max_events": 512, "basket_gap_minutes": 30,
                  "contrastive_weight": 0.5, "families": ["event_transformer", "pretrained_lm"]}
    )  # fmt: skip
    assert (cfg.model.token_unit, cfg.model.max_events, cfg.model.basket_gap_minutes) == (
        "basket", 512, 30.0,
    )  # fmt: skip
    assert cfg.contrastive_weight == 0.5 and cfg.families == ("event_transformer", "pretrained_lm")
