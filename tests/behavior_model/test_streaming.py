"""Training batches streamed from example shards, and DDP across two CPU processes (gloo)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from behavior_model.config import LabelConfig, ModelConfig
from behavior_model.data import build_vocabulary
from behavior_model.model import BehaviorModel
from behavior_model.predictor import BehaviorPredictor
from behavior_model.streaming import ShardStream, StreamConfig, shard_fragments, train_ddp
from jobs import examples as spark_examples
from jobs.spark import event_schema
from pipeline.contracts import EVENT_COLUMNS, FEATURE_NAMES
from pipeline.sample_data import SampleConfig, canonical_events

LABELS = LabelConfig()
MODEL = ModelConfig(hidden_size=32, intermediate_size=64, max_events=16, use_text=False,
                    context_dim=len(FEATURE_NAMES))  # fmt: skip


@pytest.fixture(scope="module")
def shards(spark, tmp_path_factory) -> tuple[Path, object]:
    """Labelled shards of three weekly cutoffs of the sample shop (one Parquet file each)."""
    events = canonical_events(SampleConfig(days=50, users=300, seed=4))[list(EVENT_COLUMNS)]
    frame = spark.createDataFrame(events.astype({"quantity": "float64"}), event_schema())
    table = tmp_path_factory.mktemp("stream") / "examples"
    for k in range(3):
        cutoff = datetime(2026, 1, 15, tzinfo=UTC) + timedelta(days=7 * k)
        shard = spark_examples.build_examples(
            frame, cutoff, lookback_days=LABELS.lookback_days, max_events=MODEL.max_events,
            purchase_days=LABELS.purchase_horizon_days, churn_days=LABELS.churn_horizon_days,
        )  # fmt: skip
        spark_examples.write_examples(shard, table, [cutoff.date()])
    return table, build_vocabulary(events, MODEL)


def _stream(files, vocab, **kw) -> ShardStream:
    cfg = StreamConfig(batch_size=32, buffer_rows=128, read_rows=64, **kw)
    return ShardStream(files, model=MODEL, vocab=vocab, text_index={},
                       text_table=np.zeros((1, MODEL.text_dim), np.float32), cfg=cfg)  # fmt: skip


def test_the_stream_yields_every_example_once_with_a_bounded_buffer(shards):
    table, vocab = shards
    files = shard_fragments(table)
    rows = ds.dataset(table, format="parquet", partitioning="hive").to_table()
    assert len(files) == 3 and rows.num_rows > 400
    stream = _stream(files, vocab)
    batches = list(stream)
    lengths = np.concatenate([b["lengths"].numpy() for b in batches])
    targets = np.concatenate([b["targets"].numpy() for b in batches])
    # Every (user, cutoff) once: the same count, the same event counts, the same labels.
    assert len(lengths) == rows.num_rows
    expected = np.minimum(rows["n_events"].to_numpy(), MODEL.max_events)
    assert sorted(lengths.tolist()) == sorted(expected.tolist())
    assert targets[:, 0].sum() == rows["churn"].to_numpy().sum()
    assert targets[:, 1].sum() == rows["purchase"].to_numpy().sum()
    assert all(len(b["lengths"]) <= 32 for b in batches)
    # Memory: never more than the buffer plus one read, however many users the shards hold.
    assert stream.peak_rows <= 128 + 64
    # Shuffled across shards (not the file order), and another order in the next epoch.
    stream.set_epoch(1)
    again = np.concatenate([b["lengths"].numpy() for b in stream])
    assert sorted(again.tolist()) == sorted(lengths.tolist()) and again.tolist() != lengths.tolist()


def _rank(rank: int, world: int, init: str, files: list[str], ckpt: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        predictor = BehaviorPredictor.load(Path(ckpt))
        stream = StreamConfig(batch_size=32, buffer_rows=128, read_rows=64)
        losses = train_ddp(predictor, files, epochs=1, stream=stream)
        torch.save({"state": predictor.model.state_dict(), "losses": losses}, f"{out}/{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_on_two_cpu_processes_ends_with_the_same_weights_on_both(shards, tmp_path):
    table, vocab = shards
    torch.manual_seed(0)
    model = BehaviorModel(MODEL, n_item_tokens=vocab.n_item_tokens, n_categories=vocab.n_categories)
    ckpt = BehaviorPredictor(model, vocab=vocab, labels=LABELS, text_model_path=None).save(
        tmp_path / "init.pt"
    )
    files = shard_fragments(table)
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_rank, args=(2, init, files, str(ckpt), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1))
    start = torch.load(ckpt, weights_only=True)["state_dict"]
    for name, value in r0["state"].items():
        torch.testing.assert_close(value, r1["state"][name], rtol=0, atol=0, msg=name)
    moved = [n for n, v in r0["state"].items() if not torch.equal(v, start[n])]
    assert "heads.weight" in moved or any(n.startswith("heads") for n in moved)
    assert all(np.isfinite(r["losses"]).all() for r in (r0, r1))
