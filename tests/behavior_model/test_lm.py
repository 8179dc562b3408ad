"""The pretrained LM backbone on a CPU: SmolLM2-135M from its GGUF file, histories as text within a
token budget, LoRA fine-tuning of a few users (issue 9)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from behavior_model.checkpoints import load_predictor
from behavior_model.config import LMConfig, TrainConfig, label_config
from behavior_model.data import build_examples, build_vocabulary, make_text_table
from behavior_model.families import fit
from behavior_model.lm import HistoryEncoder, LMPredictor, history_lines, resolve_lm_folder
from pipeline.sample_data import SampleConfig, canonical_events
from pipeline.source_mapping import load_mapping
from tests.behavior_model.conftest import events_frame

LABELS = label_config(load_mapping("sample_clickstream").labels)


def test_the_gguf_is_converted_once(lm_folder):
    from transformers import AutoConfig

    stamp = (lm_folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_lm_folder(None, lm_folder.parent) == lm_folder
    assert (lm_folder / "model.safetensors").stat().st_mtime_ns == stamp
    config = AutoConfig.from_pretrained(lm_folder)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("llama", 576, 30)
    assert not hasattr(config, "quantization_config")
    with pytest.raises(FileNotFoundError, match="Hugging Face model folder or a .gguf"):
        resolve_lm_folder(str(lm_folder / "nothing.bin"), lm_folder.parent)


def test_history_text_keeps_the_latest_lines_within_the_budget(lm_folder):
    from transformers import AutoTokenizer

    days = range(1, 11)
    events = events_frame(
        [
            ("u1", f"2026-01-{d:02d} 10:00:00", "purchase" if d % 2 else "view", f"I{d}")
            for d in days
        ]
    ).assign(
        item_text=[f"BLUE MUG NUMBER {d}" for d in days],
        price=2.5,
        quantity=[4 if d % 2 else 1 for d in days],
    )
    cutoff = pd.Timestamp("2026-01-12", tz="UTC")
    cfg = TrainConfig(labels=LABELS)
    text_index, table = make_text_table(events, None)
    ex = build_examples(
        events, cutoff, labels=cfg.labels, model=cfg.model, vocab=build_vocabulary(events, cfg.model),
        text_index=text_index, text_table=table, with_labels=False,
    )  # fmt: skip
    lines = history_lines(ex, 0, {row: text for text, row in text_index.items()})
    assert len(lines) == 10
    assert lines[0] == "2026-01-01 purchase | BLUE MUG NUMBER 1 | x4 | 10"
    assert lines[1] == "2026-01-02 view | BLUE MUG NUMBER 2 | x1 | 2.50"
    tokenizer = AutoTokenizer.from_pretrained(lm_folder)

    full = tokenizer.decode(HistoryEncoder(tokenizer, 4096).encode(ex, [0])[0])
    assert full.startswith("History before 2026-01-12 (10 events; the latest 10 shown)")
    assert full.index("NUMBER 1 |") < full.index("NUMBER 9 |") < full.index("NUMBER 10 |")

    ids = HistoryEncoder(tokenizer, 80).encode(ex, [0])[0]
    assert len(ids) <= 80
    short = tokenizer.decode(ids)
    assert short.endswith(lines[-1] + "\n")  # the most recent event always stays
    assert "NUMBER 1 |" not in short  # the oldest went first, whole lines only
    kept = int(short.split("the latest ")[1].split(" ")[0])
    assert 1 <= kept < 10 and short.count("BLUE MUG") == kept


def test_lora_fine_tuning_on_a_cpu(lm_folder):
    """A few users, a short budget: the adapters and heads learn, the pretrained weights stay."""
    from safetensors.torch import load_file

    events = canonical_events(SampleConfig(days=45, users=24, seed=5))
    cfg = TrainConfig(
        labels=LABELS, device="cpu", n_train_cutoffs=1,
        lm=LMConfig(model_path=str(lm_folder), token_budget=48, epochs=1, batch_size=8),
    )  # fmt: skip
    cfg = replace(cfg, model=replace(cfg.model, backbone="pretrained_lm", use_text=False))
    trained = fit(events, cfg)
    predictor = trained.predictor
    model = predictor.model

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert 0 < trainable / total < 0.05
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # LoRA B starts at zero
    pretrained = load_file(lm_folder / "model.safetensors")
    q = model.backbone.base_model.model.layers[0].self_attn.q_proj.base_layer.weight
    assert torch.equal(q.detach(), pretrained["model.layers.0.self_attn.q_proj.weight"])

    n_val = len(trained.data.table("val"))
    assert trained.val_probabilities.shape == (n_val, 2) and n_val > 5
    assert ((trained.val_probabilities > 0) & (trained.val_probabilities < 1)).all()
    assert predictor.calibration is not None and "val_churn_roc_auc" in trained.val_metrics
    # Scoring again (eval mode: no dropout) gives the validation probabilities back.
    again = trained.data.predict(predictor, "val")
    np.testing.assert_allclose(again, trained.val_probabilities, atol=1e-5)

    # The checkpoint holds the trained weights only, and scores the same once loaded (the base LM
    # comes from its folder again): what the registry's pyfunc and the scoring executors load.
    blob = predictor.to_bytes()
    assert len(blob) < 0.1 * (lm_folder / "model.safetensors").stat().st_size
    loaded = load_predictor(blob)
    assert isinstance(loaded, LMPredictor) and loaded.calibration == predictor.calibration
    np.testing.assert_allclose(trained.data.predict(loaded, "val"), again, atol=1e-5)
    ex = next(trained.data.example_chunks("val", loaded.model.cfg))
    probs, vectors = loaded.predict_with_vectors(ex)
    assert vectors.shape == (len(ex), 576) and np.allclose(probs, again, atol=1e-5)
    # Reasons: the RFM feature drivers, three per user and label, largest weight first.
    drivers = loaded.explain(ex)
    assert len(drivers) == 3 * 2 * len(ex) and drivers["driver"].str.startswith("feature:").all()
    first = drivers.groupby(["user_id", "label"])["weight"].apply(
        lambda w: w.abs().is_monotonic_decreasing
    )
    assert first.all()
