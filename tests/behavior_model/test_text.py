"""Item text embeddings: unit vectors from the local encoder, embedded once, cached per model."""

from __future__ import annotations

import numpy as np
import pytest

from behavior_model.text import TextEmbedder

pytestmark = pytest.mark.slow


def test_embeddings_are_normalised_similar_texts_are_close_and_the_cache_serves_them(tmp_path):
    texts = ["RED RETRO KITE", "red retro kite", "WHITE CERAMIC TEAPOT"]
    first = TextEmbedder(cache_dir=tmp_path)
    v = first.embed(texts)
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]
    (cache,) = tmp_path.glob("text_embeddings_*.npz")

    # A new embedder reads the cache and never loads the encoder for known texts.
    second = TextEmbedder(cache_dir=tmp_path)
    np.testing.assert_array_equal(second.embed(texts[::-1]), v[::-1])
    assert second._model is None and second.dim == 384
    # A different model path gets its own cache file.
    other = TextEmbedder("/some/other/model", cache_dir=tmp_path)
    assert other._cache_file() != cache
