"""The real Online Retail log, loaded as one job: every one of its 541,909 rows accounted for.

Reads ../shared/data/online_retail/ (never copied into the repo); skipped where it is absent.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from dags.run import run_dag
from pipeline.settings import Settings
from pipeline.warehouse import Warehouse
from tests.conftest import use_data_dir

pytestmark = pytest.mark.slow
ONLINE_RETAIL = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "online_retail"
    / "online_retail.csv.gz"
)
FIRST, LAST = date(2010, 12, 1), date(2011, 12, 9)


@pytest.fixture(scope="module")
def loaded(spark, tmp_path_factory):
    if not ONLINE_RETAIL.exists():
        pytest.skip(f"Online Retail not found at {ONLINE_RETAIL}")
    mp = pytest.MonkeyPatch()
    settings = use_data_dir(mp, tmp_path_factory.mktemp("online_retail"))
    assert _load() == "success"
    yield settings
    mp.undo()


def _load() -> str:
    """The clickstream_backfill DAG over the whole log (clean, gate, sessionize, gate)."""
    conf = {"source": "online_retail", "path": str(ONLINE_RETAIL),
            "from_date": FIRST.isoformat(), "to_date": LAST.isoformat()}  # fmt: skip
    return run_dag("clickstream_backfill", conf)


@pytest.fixture
def on_loaded(loaded, monkeypatch):
    """This test runs against the loaded data folder (the DAG tasks read it from the env)."""
    return use_data_dir(monkeypatch, loaded.data_dir)


def _summary():
    return Warehouse(Settings.from_env().warehouse_url).query(
        "SELECT count(*), sum(raw_rows), sum(clean_rows), sum(quarantined_rows), sum(duplicate_rows), "
        "sum(unaccounted_rows) FROM etl_run_summary WHERE source = 'online_retail'"
    )[0]


def _lake():
    lake = Settings.from_env().source_lake("online_retail")
    return duckdb.sql(
        f"SELECT count(*), count(DISTINCT event_id), sum(quantity), count(*) FILTER (WHERE event_type = 'return') "
        f"FROM read_parquet('{lake}/sessionized_events/*/*.parquet')"
    ).fetchall()[0]


def test_every_row_is_accounted_for(on_loaded):
    reasons = Warehouse(on_loaded.warehouse_url).query(
        "SELECT reason, sum(rows) FROM etl_quarantine_counts WHERE source = 'online_retail' "
        "GROUP BY reason"
    )
    # 135,080 rows have no CustomerID (SOURCE.txt); each is quarantined with that reason.
    assert dict(reasons) == {"missing_user_id": 135_080}
    days, raw, clean, quarantined, duplicate, unaccounted = _summary()
    assert days == (LAST - FIRST).days + 1
    assert (raw, quarantined, unaccounted) == (541_909, 135_080, 0)
    assert clean + duplicate == 541_909 - 135_080 and duplicate > 0
    lake_rows, distinct_ids, quantity, returns = _lake()
    assert lake_rows == distinct_ids == clean
    assert quantity > 0 and returns > 0  # cancellations became returns with positive quantities


def test_rerunning_the_load_changes_nothing(on_loaded):
    before_summary, before_lake = _summary(), _lake()
    assert _load() == "success"
    assert _summary() == before_summary
    assert _lake() == before_lake
