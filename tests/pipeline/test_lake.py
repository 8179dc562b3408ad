"""Reading lake tables with their declared schemas, under the table's shared lock."""

from __future__ import annotations

import threading
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.contracts import EVENT_ARROW_SCHEMA
from pipeline.lake import Lake, read_partitions, table_lock, without_bots


def _write(table_dir, day: str, ids: list[str]) -> None:
    schema = EVENT_ARROW_SCHEMA.remove(EVENT_ARROW_SCHEMA.get_field_index("event_date"))
    rows = pd.DataFrame({"event_id": ids, "user_id": "u", "event_type": "view", "item_id": "I",
                         "event_time": pd.Timestamp(day, tz="UTC")})  # fmt: skip
    rows = rows.reindex(columns=schema.names)
    folder = table_dir / f"event_date={day}"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pandas(rows, schema=schema, preserve_index=False), folder / "p.parquet"
    )


def test_reads_a_date_range_with_the_contract_schema(tmp_path):
    lake = Lake(tmp_path / "shop")
    for day, ids in (("2026-01-01", ["a"]), ("2026-01-02", ["b", "c"]), ("2026-01-03", ["d"])):
        _write(lake.events, day, ids)
    got = read_partitions(lake.events, start=date(2026, 1, 2), end=date(2026, 1, 3))
    assert sorted(got["event_id"]) == ["b", "c", "d"]
    assert list(got.columns) == EVENT_ARROW_SCHEMA.names
    assert str(got["event_time"].dt.tz) == "UTC"
    # A table that does not exist yet is empty, with its columns; an unknown folder is an error.
    assert list(read_partitions(lake.sessionized_events).columns)[-1] == "event_date"
    with pytest.raises(ValueError, match="not a lake table"):
        read_partitions(tmp_path / "shop" / "scores")


def test_a_reader_waits_for_a_swap_in_progress(tmp_path):
    lake = Lake(tmp_path / "shop")
    _write(lake.events, "2026-01-01", ["a"])
    done = threading.Event()
    with table_lock(lake.events, shared=False):
        reader = threading.Thread(target=lambda: (read_partitions(lake.events), done.set()))
        reader.start()
        assert not done.wait(timeout=1.0)
    reader.join(timeout=10)
    assert done.is_set()


def test_bots_are_left_out_on_every_day_read():
    events = pd.DataFrame({"user_id": ["u", "b", "b"], "is_bot": [False, False, True]})
    assert list(without_bots(events)["user_id"]) == ["u"]
