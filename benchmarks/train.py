"""Training throughput and memory: examples/s, tokens/s, peak memory, on the CPU and on a GPU.

    python -m benchmarks.train            (make bench-train)

Trains the behaviour model (default architecture, bf16 autocast and pinned memory on CUDA, SDPA
attention) on the seeded sample for a fixed number of steps per batch size, and reports the steady
rate (first steps excluded). Memory is measured at two user counts with the same batch size: it
should follow the batch, not the number of users (examples are ragged arrays; batches are padded
one at a time). On CUDA the same is timed with ``torch.compile(dynamic=True)``.
Results merge into benchmarks/results/train.json (one entry per machine and device) and train.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil
import torch

from behavior_model.config import TrainConfig
from behavior_model.data import build_examples, build_vocabulary, concat_examples, make_text_table
from behavior_model.model import BehaviorModel
from behavior_model.trainer import choose_cutoffs, make_loader
from pipeline.sample_data import SampleConfig, canonical_events

RESULTS = Path(__file__).parent / "results"


def examples_for(users: int, cfg: TrainConfig):
    events = canonical_events(SampleConfig(users=users, days=60, seed=7))
    train_cutoffs, val = choose_cutoffs(events, cfg)
    inputs = events[events["event_time"] < val]
    vocab = build_vocabulary(inputs, cfg.model)
    # Random text vectors: throughput does not depend on what the encoder says.
    text_index, _ = make_text_table(inputs, None)
    table = (
        np.random.default_rng(0)
        .normal(size=(len(text_index) + 1, cfg.model.text_dim))
        .astype(np.float32)
    )
    common = dict(
        labels=cfg.labels, model=cfg.model, vocab=vocab, text_index=text_index, text_table=table
    )
    ex = concat_examples([build_examples(events, t, **common) for t in train_cutoffs])
    return ex, vocab


def time_training(
    ex, vocab, cfg: TrainConfig, device: torch.device, *, steps: int, compile_model: bool = False
) -> dict:
    torch.manual_seed(0)
    model_cfg = replace(cfg.model, context_dim=ex.context.shape[1])
    model = BehaviorModel(
        model_cfg, n_item_tokens=vocab.n_item_tokens, n_categories=vocab.n_categories
    ).to(device)
    step_fn = torch.compile(model, dynamic=True) if compile_model else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss0 = psutil.Process().memory_info().rss
    peak_rss = rss0
    warmup, done, n_ex, n_tok = 3, 0, 0, 0
    t0 = None
    while done < steps + warmup:
        for batch in make_loader(ex, cfg, device, shuffle=True):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with autocast:
                _, loss = step_fn(batch, batch["targets"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            elif done > warmup:
                n_ex += len(batch["lengths"])
                n_tok += int(batch["lengths"].sum())
            peak_rss = max(peak_rss, psutil.Process().memory_info().rss)
            if done >= steps + warmup:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    out = {
        "examples_per_s": round(n_ex / seconds, 1),
        "tokens_per_s": round(n_tok / seconds),
        "timed_steps": steps,
        "peak_rss_growth_mib": round((peak_rss - rss0) / 2**20),
    }
    if device.type == "cuda":
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return out


# Dense bf16 peak of the GPUs we are lent (NVIDIA datasheets, SXM parts, no sparsity).
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12}


def lm_flops_per_token(model, tokens: int) -> float:
    """Training FLOPs per token of a LoRA fine-tune, counted conservatively: forward (2N) and the
    activation gradients (2N) through every base weight, but no weight gradients for the frozen
    ones (6 per trainable parameter instead), plus attention (12 x layers x width x sequence)."""
    base = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    config = model.backbone.config
    attention = 12 * config.num_hidden_layers * config.hidden_size * tokens
    return 4 * base + 6 * trainable + attention


def time_lm(ex, vocab, cfg: TrainConfig, device: torch.device, *, steps: int) -> dict:
    """The pretrained LM backbone (LoRA + heads), fine-tuned on full ``token_budget`` histories."""
    from behavior_model.lm import _autocast, build_lm

    torch.manual_seed(0)
    predictor = build_lm(cfg, vocab)
    model = predictor.model.to(device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    # The longest histories: every row fills the budget, as on Online Retail at 512 tokens.
    longest = np.argsort(-np.diff(ex.offsets), kind="stable")
    bs, warmup = cfg.lm.batch_size, 2
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    n_ex = n_tok = n_pad = 0
    t0 = None
    for step in range(steps + warmup):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        idx = longest[(step * bs) % (len(ex) - bs) :][:bs].tolist()
        batch = predictor.encoder.batch(ex, idx, device)
        with _autocast(device):
            _, loss = model(batch, batch["targets"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= warmup:
            n_ex += len(idx)
            n_tok += int(batch["attention_mask"].sum())
            n_pad += batch["input_ids"].numel()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    flops = lm_flops_per_token(model, cfg.lm.token_budget) * n_pad / seconds
    out = {
        "examples_per_s": round(n_ex / seconds, 2),
        "tokens_per_s": round(n_tok / seconds),
        "padded_tokens_per_s": round(n_pad / seconds),
        "timed_steps": steps,
        "model_tflops_per_s": round(flops / 1e12, 2),
        "attention": model.backbone.config._attn_implementation,
    }
    if device.type == "cuda":
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
        out["mfu"] = None if peak is None else round(flops / peak, 3)
    return out


def _device_name(name: str) -> str:
    if name == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", default="cpu,cuda")
    p.add_argument("--batch-sizes", default="64,256")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--out", type=Path, default=RESULTS / "train.json")
    p.add_argument("--no-lm", action="store_true", help="skip the pretrained LM backbone")
    a = p.parse_args(argv)
    cfg = TrainConfig()
    data = {users: examples_for(users, cfg) for users in (1000, 4000)}
    runs = []
    for name in a.devices.split(","):
        if name == "cuda" and not torch.cuda.is_available():
            continue
        device = torch.device(name)
        dev_name = _device_name(name)
        for users, (ex, vocab) in data.items():
            for bs in map(int, a.batch_sizes.split(",")):
                steps = a.steps if name == "cuda" else max(5, a.steps // 3)
                # torch.compile is timed on the GPU only, at one user count.
                for compiled in (False, True) if name == "cuda" and users == 1000 else (False,):
                    run = {"device": name, "device_name": dev_name, "users": users,
                           "examples": len(ex), "batch_size": bs, "compiled": compiled}  # fmt: skip
                    try:
                        run |= time_training(
                            ex,
                            vocab,
                            replace(cfg, batch_size=bs),
                            device,
                            steps=steps,
                            compile_model=compiled,
                        )
                    except Exception as e:  # noqa: BLE001 - reported in the results, not hidden
                        if not compiled:
                            raise
                        run["error"] = repr(e)[:300]
                    runs.append(run)
                    print(run, flush=True)
    lm_runs = []
    if not a.no_lm:
        ex, vocab = data[1000]
        for name in a.devices.split(","):
            if name == "cuda" and not torch.cuda.is_available():
                continue
            device = torch.device(name)
            # A CPU step at 512 tokens takes tens of seconds: few steps, small batches there.
            budgets = (512,) if name == "cuda" else (128, 512)
            for budget in budgets:
                bs = 16 if name == "cuda" else 4
                lm = replace(cfg.lm, token_budget=budget, batch_size=bs)
                run = {"device": name, "device_name": _device_name(name), "token_budget": budget,
                       "batch_size": bs}  # fmt: skip
                run |= time_lm(
                    ex, vocab, replace(cfg, lm=lm), device, steps=a.steps if name == "cuda" else 3
                )
                lm_runs.append(run)
                print(run, flush=True)
    host = f"{platform.node()} ({psutil.cpu_count()} cores, torch {torch.__version__})"
    report = (
        json.loads(a.out.read_text())
        if a.out.exists()
        else {"command": "make bench-train  (python -m benchmarks.train)", "hosts": {}}
    )
    report["hosts"][host] = {"date": time.strftime("%Y-%m-%d"), "runs": runs, "lm_runs": lm_runs}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2))
    a.out.with_suffix(".md").write_text(markdown(report))
    print(a.out.with_suffix(".md").read_text())


def markdown(report: dict) -> str:
    lines = ["# Training benchmark", "", f"Command: `{report['command']}`", ""]
    for host, h in report["hosts"].items():
        lines += [
            f"## {host}, {h['date']}",
            "",
            "| device | users | examples | batch | compiled | examples/s | tokens/s | peak GPU MiB | RSS growth MiB |",
            "|---|---:|---:|---:|---|---:|---:|---:|---:|",
        ]
        for r in h["runs"]:
            if "error" in r:
                lines.append(
                    f"| {r['device']} | {r['users']} | | {r['batch_size']} | yes | failed: {r['error']} | | | |"
                )
                continue
            lines.append(
                f"| {r['device_name']} | {r['users']:,} | {r['examples']:,} | {r['batch_size']} | {'yes' if r['compiled'] else 'no'} | "
                f"{r['examples_per_s']:,} | {r['tokens_per_s']:,} | {r.get('peak_gpu_mib', '-')} | {r['peak_rss_growth_mib']} |"
            )
        lines.append("")
        if h.get("lm_runs"):
            lines += [
                "Pretrained LM backbone (SmolLM2-135M, LoRA r16 + heads), histories filling the "
                "token budget. Model FLOPs per token: 4 x frozen + 6 x trainable parameters + "
                "12 x layers x width x budget (no weight gradients for frozen weights); MFU against "
                "the dense bf16 peak.",
                "",
                "| device | budget | batch | examples/s | tokens/s | model TFLOP/s | MFU | attention | peak GPU MiB |",
                "|---|---:|---:|---:|---:|---:|---:|---|---:|",
            ]
            for r in h["lm_runs"]:
                mfu = "-" if r.get("mfu") is None else f"{r['mfu']:.1%}"
                lines.append(
                    f"| {r['device_name']} | {r['token_budget']} | {r['batch_size']} | {r['examples_per_s']:,} "
                    f"| {r['tokens_per_s']:,} | {r['model_tflops_per_s']} | {mfu} | {r['attention']} | {r.get('peak_gpu_mib', '-')} |"
                )
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
