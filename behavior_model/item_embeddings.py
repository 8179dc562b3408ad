"""Item text vectors, computed once per (item, text, text model) and kept in the lake.

    <lake>/item_embeddings/text_model=<key>/items.parquet    item_id, item_text, vector, first_seen

``refresh`` takes the (item, text) pairs a run needs (a Spark aggregation over its example shard:
the catalogue, never the events), embeds only the pairs the table lacks (a new item, or an item
whose text changed: the old pair stays, older events still carry it), and rewrites the file under
the table's lock. Scoring reads the vectors from here; the text model is named by the encoder it
is (``TextEmbedder.model_key``), so vectors of two encoders never mix.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_model.text import TextEmbedder
from pipeline.lake import table_lock

log = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("item_text", pa.string()),
        ("vector", pa.list_(pa.float32())),
        ("first_seen", pa.date32()),  # the run date that embedded it
    ]
)


def table_file(table: Path, text_model: str) -> Path:
    return table / f"text_model={text_model}" / "items.parquet"


def shard_items(shard: DataFrame) -> list[tuple[str, str]]:
    """Distinct (item_id, item_text) pairs with a text in an example shard's histories."""
    pairs = (
        shard.select(F.explode("history").alias("e"))
        .select("e.item_id", "e.item_text")
        .where(F.col("item_text").isNotNull())
        .distinct()
    )
    return [(r[0], r[1]) for r in pairs.collect()]


def read(table: Path, text_model: str) -> pa.Table:
    path = table_file(table, text_model)
    if not path.exists():
        return SCHEMA.empty_table()
    with table_lock(table, shared=True):
        return pq.read_table(path, schema=SCHEMA)


def refresh(
    table: Path, items: list[tuple[str, str]], embedder: TextEmbedder, *, run_date: date
) -> tuple[dict[str, int], np.ndarray, int]:
    """Embed the pairs of ``items`` the table lacks and store them; returns the text index and
    vector table the model reads (row 0 = no text) for the texts of ``items``, and how many
    pairs were new."""
    key = embedder.model_key
    with table_lock(table, shared=False):
        path = table_file(table, key)
        known = pq.read_table(path, schema=SCHEMA) if path.exists() else SCHEMA.empty_table()
        have = set(zip(known["item_id"].to_pylist(), known["item_text"].to_pylist(), strict=True))
        new = sorted(set(items) - have)
        if new:
            vectors = embedder.embed([text for _, text in new])
            added = pa.table(
                {
                    "item_id": [i for i, _ in new],
                    "item_text": [t for _, t in new],
                    "vector": pa.array(list(vectors.astype(np.float32)), pa.list_(pa.float32())),
                    "first_seen": pa.array([run_date] * len(new), pa.date32()),
                },
                schema=SCHEMA,
            )
            known = pa.concat_tables([known, added])
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".items-{uuid.uuid4().hex}.parquet")
            pq.write_table(known, tmp)
            tmp.replace(path)  # readers see the old file or the new one, never half of one
            log.info("item_embeddings (%s): %d new (item, text) pairs embedded", key, len(new))
    wanted = {t for _, t in items}
    texts = known["item_text"].to_pylist()
    rows: dict[str, int] = {}
    for i, text in enumerate(texts):
        if text in wanted and text not in rows:
            rows[text] = i
    ordered = sorted(rows)
    dim = embedder.dim if not ordered else len(known["vector"][rows[ordered[0]]])
    matrix = np.zeros((len(ordered) + 1, dim), np.float32)
    if ordered:
        idx = pa.array([rows[t] for t in ordered])
        flat = known["vector"].take(idx).combine_chunks().flatten().to_numpy()
        matrix[1:] = flat.reshape(len(ordered), dim)
    return {t: i + 1 for i, t in enumerate(ordered)}, matrix, len(new)
