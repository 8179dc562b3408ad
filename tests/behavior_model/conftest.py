from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from pipeline.contracts import SESSIONIZED_ARROW_SCHEMA
from pipeline.lake import Lake
from pipeline.sample_data import SampleConfig, canonical_events


@pytest.fixture(scope="session")
def sample_events() -> pd.DataFrame:
    """The planted-signal sample as canonical events (60 days, 1,000 users)."""
    return canonical_events(SampleConfig(days=60, users=1000, seed=7))


@pytest.fixture(scope="session")
def lm_folder(tmp_path_factory):
    """The packaged GGUF (SmolLM2-135M), converted once per test session into a Hugging Face
    folder (~30 to 80 s on 2 cores): every pretrained-LM test loads that folder."""
    from behavior_model.lm import resolve_lm_folder

    return resolve_lm_folder(None, tmp_path_factory.mktemp("lm_cache"))


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """(user_id, time, event_type[, item_id]) -> canonical events."""
    df = pd.DataFrame(
        [(f"e{i}", r[0], pd.Timestamp(r[1], tz="UTC"), r[2], r[3] if len(r) > 3 else "I1")
         for i, r in enumerate(rows)],
        columns=["event_id", "user_id", "event_time", "event_type", "item_id"],
    )  # fmt: skip
    return df.assign(category="toys", item_text="RED KITE", price=1.0, quantity=1, session_id=None)


def write_sessionized(lake: Lake, events: pd.DataFrame) -> None:
    """Canonical events into the lake's sessionized_events table, partitioned by event_date."""
    bots = events["is_bot"].eq(True) if "is_bot" in events else False
    frame = events.assign(
        event_date=events["event_time"].dt.date, is_bot=bots, session_id=events["session_id"]
    )[SESSIONIZED_ARROW_SCHEMA.names]
    table = pa.Table.from_pandas(frame, schema=SESSIONIZED_ARROW_SCHEMA, preserve_index=False)
    ds.write_dataset(
        table,
        lake.sessionized_events,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("event_date", pa.date32())]), flavor="hive"),
        existing_data_behavior="delete_matching",
    )
