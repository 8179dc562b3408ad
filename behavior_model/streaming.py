"""Training batches streamed from the lake's example shards, and data-parallel training with DDP.

``ShardStream`` is an ``IterableDataset`` over the Parquet fragments of example shards
(``jobs.examples``): each DDP rank and each DataLoader worker reads its own fragments (fragment
``i`` goes to reader ``i mod readers``), a seeded shuffle buffer of ``buffer_rows`` users mixes
them, and batches come out collated exactly as in memory (``behavior_model.data.collate``). Host
memory holds the buffer and one record batch, whatever the number of users.

``train_ddp`` trains a model on such a stream in every process of a ``torch.distributed`` group
(``torchrun --nproc-per-node N -m behavior_model.streaming ...``; gloo on CPUs, NCCL on GPUs):
gradients are averaged by ``DistributedDataParallel``, so every rank ends with the same weights,
and rank 0 writes the checkpoint.

    torchrun --nproc-per-node 2 -m behavior_model.streaming \\
        --shards data/lake/<source>/training_examples \\
        --init model.pt --out tuned.pt --epochs 1
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from behavior_model.config import ModelConfig
from behavior_model.data import Vocabulary, collate, examples_from_arrow, make_text_table
from behavior_model.predictor import BehaviorPredictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamConfig:
    batch_size: int = 128
    # Users held for shuffling; the stream's host memory is about this many users' rows.
    buffer_rows: int = 8192
    # Rows read from Parquet at a time.
    read_rows: int = 4096
    seed: int = 7


def shard_fragments(shards: Path | list[Path]) -> list[str]:
    """The Parquet files of example shards (a table folder or partition folders), sorted."""
    paths = [shards] if isinstance(shards, Path) else list(shards)
    files: list[str] = []
    for p in paths:
        files += ds.dataset(p, format="parquet", partitioning="hive").files
    return sorted(files)


def shard_texts(files: list[str]) -> pd.DataFrame:
    """The distinct item texts of the shards' histories (``item_text`` column), read by column."""
    texts: set[str] = set()
    for batch in ds.dataset(files, format="parquet").to_batches(columns=["history"]):
        flat = pc.list_flatten(batch.column(0)).field("item_text")
        texts.update(t for t in pc.unique(flat).to_pylist() if t is not None)
    return pd.DataFrame({"item_text": sorted(texts)})


class ShardStream(IterableDataset):
    """Collated training batches from example shards; see the module docstring."""

    def __init__(
        self,
        files: list[str],
        *,
        model: ModelConfig,
        vocab: Vocabulary,
        text_index: dict[str, int],
        text_table: np.ndarray,
        cfg: StreamConfig = StreamConfig(),
        rank: int = 0,
        world_size: int = 1,
        keep: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """``keep``: user ids -> which rows to train on (None: every row)."""
        self.files = files
        self.keep = keep
        self.model, self.vocab = model, vocab
        self.text_index, self.text_table = text_index, text_table
        self.cfg, self.rank, self.world_size = cfg, rank, world_size
        self.epoch = 0
        # The largest number of users held at once by the last iteration (for the memory test).
        self.peak_rows = 0

    def set_epoch(self, epoch: int) -> None:
        """Another shuffle order per epoch, the same on every rank."""
        self.epoch = epoch

    def my_files(self) -> list[str]:
        info = get_worker_info()
        workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        readers, me = self.world_size * workers, self.rank * workers + worker
        return [f for i, f in enumerate(self.files) if i % readers == me]

    def _record_batches(self) -> Iterator[pa.Table]:
        if not self.my_files():
            return
        data = ds.dataset(self.my_files(), format="parquet")
        for batch in data.to_batches(batch_size=self.cfg.read_rows):
            table = pa.Table.from_batches([batch])
            if self.keep is not None:
                table = table.filter(self.keep(table["user_id"].to_numpy(zero_copy_only=False)))
            if table.num_rows:
                yield table

    def _emit(self, table: pa.Table, rng: np.random.Generator, *, final: bool):
        """Shuffle ``table``; yield full batches; return the rows kept for the next round."""
        order = rng.permutation(table.num_rows)
        n_out = table.num_rows if final else table.num_rows - self.cfg.buffer_rows // 2
        n_out -= 0 if final else n_out % self.cfg.batch_size
        if n_out <= 0:
            return table, []
        out = table.take(pa.array(order[:n_out]))
        ex = examples_from_arrow(
            out, model=self.model, vocab=self.vocab, text_index=self.text_index,
            text_table=self.text_table, with_labels=True,
        )  # fmt: skip
        batches = [
            collate(ex, list(range(i, min(i + self.cfg.batch_size, len(ex)))))
            for i in range(0, len(ex), self.cfg.batch_size)
        ]
        return table.take(pa.array(order[n_out:])), batches

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([self.cfg.seed, self.epoch, self.rank])
        held: pa.Table | None = None
        self.peak_rows = 0
        for table in self._record_batches():
            held = table if held is None else pa.concat_tables([held, table])
            self.peak_rows = max(self.peak_rows, held.num_rows)
            if held.num_rows >= self.cfg.buffer_rows:
                held, batches = self._emit(held, rng, final=False)
                yield from batches
        if held is not None and held.num_rows:
            _, batches = self._emit(held, rng, final=True)
            yield from batches


def train_ddp(
    predictor: BehaviorPredictor,
    files: list[str],
    *,
    epochs: int,
    learning_rate: float = 1e-3,
    stream: StreamConfig = StreamConfig(),
    text_index: dict[str, int] | None = None,
    text_table: np.ndarray | None = None,
) -> list[float]:
    """Fine-tune ``predictor``'s model on labelled shards in every process of the default process
    group (or alone, without one). Returns this rank's mean loss per epoch."""
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    torch.manual_seed(stream.seed)  # the same initial state on every rank
    model = predictor.model.train()
    # The next-event head is not used when fine-tuning: DDP must not wait for its gradients.
    net = (
        torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        if distributed
        else model
    )
    dim = predictor.model.cfg.text_dim
    data = ShardStream(
        files, model=model.cfg, vocab=predictor.vocab, text_index=text_index or {},
        text_table=np.zeros((1, dim), np.float32) if text_table is None else text_table,
        cfg=stream, rank=rank, world_size=world,
    )  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    losses = []
    for epoch in range(epochs):
        data.set_epoch(epoch)
        total, count = 0.0, 0
        batches = iter(DataLoader(data, batch_size=None))
        while True:
            batch = next(batches, None)
            # Ranks may hold different numbers of batches: stop together when any one is done,
            # or DDP's all-reduce would wait forever for the rank that ran out.
            if distributed:
                more = torch.tensor([0 if batch is None else 1])
                dist.all_reduce(more, op=dist.ReduceOp.MIN)
                if more.item() == 0:
                    break
            elif batch is None:
                break
            _, loss = net(batch, batch["targets"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch["lengths"])
            count += len(batch["lengths"])
        losses.append(total / max(count, 1))
        log.info("rank %d epoch %d: loss %.4f over %d examples", rank, epoch, losses[-1], count)
    model.eval()
    return losses


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--shards", type=Path, required=True, help="example shards with labels")
    p.add_argument("--init", type=Path, required=True, help="a checkpoint to start from")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=1)
    a = p.parse_args(argv)
    distributed = dist.is_torchelastic_launched()
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    predictor = BehaviorPredictor.load(a.init)
    files = shard_fragments(a.shards)
    text_index, text_table = make_text_table(shard_texts(files), predictor.embedder)
    train_ddp(predictor, files, epochs=a.epochs, text_index=text_index, text_table=text_table)
    if not distributed or dist.get_rank() == 0:
        predictor.save(a.out)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
