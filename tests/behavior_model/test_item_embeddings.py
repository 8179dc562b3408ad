"""Item text vectors are embedded once per (item, text, text model) and read back from the lake."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow.parquet as pq

from behavior_model import item_embeddings
from behavior_model.text import TextEmbedder


def test_only_new_or_changed_items_are_embedded_and_vectors_come_back_by_text(tmp_path, spark):
    table = tmp_path / "item_embeddings"
    embedder = TextEmbedder(None)
    shard = spark.createDataFrame(
        [("u1", [("I1", "RED KITE"), ("I2", "BLUE MUG")]), ("u2", [("I2", "BLUE MUG")])],
        "user_id string, history array<struct<item_id: string, item_text: string>>",
    )
    items = item_embeddings.shard_items(shard)
    assert sorted(items) == [("I1", "RED KITE"), ("I2", "BLUE MUG")]
    index, vectors, new = item_embeddings.refresh(table, items, embedder, run_date=date(2026, 3, 1))
    assert new == 2 and sorted(index) == ["BLUE MUG", "RED KITE"] and vectors.shape == (3, 384)
    np.testing.assert_array_equal(vectors[0], 0)  # row 0: no text
    direct = embedder.embed(["RED KITE"])[0]
    np.testing.assert_allclose(vectors[index["RED KITE"]], direct, atol=1e-6)

    # Nothing new: nothing embedded, same vectors.
    again = item_embeddings.refresh(table, items, embedder, run_date=date(2026, 3, 2))
    assert again[2] == 0 and again[0] == index
    np.testing.assert_array_equal(again[1], vectors)

    # I1's text changed: one new pair; the old one stays for the events that carry it.
    changed = [("I1", "RED KITE, LARGE"), ("I2", "BLUE MUG")]
    index2, vectors2, new2 = item_embeddings.refresh(
        table, changed, embedder, run_date=date(2026, 3, 3)
    )
    assert new2 == 1 and sorted(index2) == ["BLUE MUG", "RED KITE, LARGE"]
    stored = pq.read_table(item_embeddings.table_file(table, embedder.model_key)).to_pylist()
    assert [(r["item_id"], r["item_text"], str(r["first_seen"])) for r in stored] == [
        ("I1", "RED KITE", "2026-03-01"),
        ("I2", "BLUE MUG", "2026-03-01"),
        ("I1", "RED KITE, LARGE", "2026-03-03"),
    ]
    assert not np.allclose(vectors2[index2["RED KITE, LARGE"]], direct)
