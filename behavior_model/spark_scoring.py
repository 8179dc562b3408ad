"""The model's per-user pass on Spark: example shards in, one row per scored user out.

``score_examples`` runs ``mapInArrow`` over the rows of an example shard (``jobs.examples``): each
Arrow batch becomes model inputs (``behavior_model.data.examples_from_arrow``), the champion gives
both probabilities and the user vector in one forward pass, and the ablation explanations
(``behavior_model.explain``) in a few more. What executors need travels once, as one broadcast
(``ScoringPayload``: the checkpoint bytes and the item-text vectors), and each Python worker loads
the model once and keeps it for every later batch and task (Spark reuses its Python workers).

Torch runs one thread per task: Spark already runs one task per core, and more threads per task
only fight over the same cores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from behavior_model import item_embeddings
from behavior_model.checkpoints import load_predictor
from behavior_model.config import LABELS
from behavior_model.data import examples_from_arrow, text_index_only
from behavior_model.serving import Predictor

EXPLANATION_TYPE = pa.struct(
    [
        ("label", pa.string()),
        ("rank", pa.int32()),
        ("driver", pa.string()),
        ("description", pa.string()),
        ("weight", pa.float64()),
    ]
)
SCORED_ARROW_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("churn_probability", pa.float64()),
        ("purchase_probability", pa.float64()),
        ("vector", pa.list_(pa.float32())),
        ("explanations", pa.list_(EXPLANATION_TYPE)),
    ]
)


@dataclass(frozen=True)
class ScoringPayload:
    """Everything an executor needs to score, broadcast once per run."""

    key: str  # "<registered model>:<version>": which model the bytes are
    checkpoint: bytes
    text_index: dict[str, int]
    text_table: np.ndarray
    explain: bool = True
    # What a worker caches the loaded model by: the key and a digest of the bytes, taken once on
    # the driver. A name and version alone are not unique: another tracking store, or a model
    # deleted and registered again, has its own version 1.
    cache_key: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.checkpoint).hexdigest()[:16]
        object.__setattr__(self, "cache_key", f"{self.key}:{digest}")


_LOADED: dict[str, Predictor] = {}


def _predictor(payload: ScoringPayload) -> Predictor:
    """The payload's model, loaded once per Python worker."""
    if payload.cache_key not in _LOADED:
        import torch

        torch.set_num_threads(1)
        _LOADED.clear()  # one model at a time per worker
        _LOADED[payload.cache_key] = load_predictor(payload.checkpoint)
    return _LOADED[payload.cache_key]


def score_table(table: pa.Table, payload: ScoringPayload) -> pa.Table:
    """Scores, vectors and explanations of the users in ``table`` (rows of an example shard)."""
    predictor = _predictor(payload)
    ex = examples_from_arrow(
        table,
        model=predictor.model.cfg,
        vocab=predictor.vocab,
        text_index=payload.text_index,
        text_table=payload.text_table,
        with_labels=False,
    )
    probs, vectors = predictor.predict_with_vectors(ex)
    per_user: list[list[dict]] = [[] for _ in range(len(ex))]
    if payload.explain and len(ex):
        row_of = {u: i for i, u in enumerate(ex.user_id)}
        for r in predictor.explain(ex).itertuples(index=False):
            per_user[row_of[r.user_id]].append(
                {"label": r.label, "rank": int(r.rank), "driver": r.driver,
                 "description": r.description, "weight": float(r.weight)}
            )  # fmt: skip
    dim = vectors.shape[1]
    flat = pa.array(vectors.astype(np.float32).reshape(-1), type=pa.float32())
    offsets = pa.array(np.arange(len(ex) + 1, dtype=np.int32) * dim, type=pa.int32())
    columns = {
        "user_id": pa.array(ex.user_id.tolist(), type=pa.string()),
        **{
            f"{label}_probability": pa.array(probs[:, j].astype(np.float64))
            for j, label in enumerate(LABELS)
        },
        "vector": pa.ListArray.from_arrays(offsets, flat),
        "explanations": pa.array(per_user, type=pa.list_(EXPLANATION_TYPE)),
    }
    return pa.table(columns, schema=SCORED_ARROW_SCHEMA)


def text_payload(
    shard: DataFrame, predictor: Predictor, *, items: Path, run_date: date
) -> tuple[dict[str, int], np.ndarray]:
    """The vectors of every item text in the shard, from the lake's ``item_embeddings`` table
    (``items``); only (item, text) pairs it lacks are embedded, on the driver."""
    cfg = predictor.model.cfg
    if not cfg.use_text:
        if cfg.backbone == "pretrained_lm":  # reads the words: texts, no vectors
            items = item_embeddings.shard_items(shard)
            return text_index_only((text for _, text in items), cfg.text_dim)
        return {}, np.zeros((1, cfg.text_dim), np.float32)
    text_index, table, _ = item_embeddings.refresh(
        items, item_embeddings.shard_items(shard), predictor.embedder, run_date=run_date
    )
    return text_index, table


def score_examples(
    spark: SparkSession,
    shard: DataFrame,
    predictor: Predictor,
    *,
    key: str,
    items: Path,
    run_date: date,
    explain: bool = True,
    partitions: int | None = None,
) -> DataFrame:
    """``SCORED_ARROW_SCHEMA`` rows for every user of ``shard``, computed on the executors; item text
    vectors come from the ``items`` table (``behavior_model.item_embeddings``)."""
    text_index, text_table = text_payload(shard, predictor, items=items, run_date=run_date)
    payload = ScoringPayload(key, predictor.to_bytes(), text_index, text_table, explain)
    shipped = spark.sparkContext.broadcast(payload)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield from score_table(pa.Table.from_batches([batch]), shipped.value).to_batches()

    rows = shard if partitions is None else shard.repartition(partitions, "user_id")
    return rows.mapInArrow(run, from_arrow_schema(SCORED_ARROW_SCHEMA))
