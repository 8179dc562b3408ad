"""How far apart the Online Retail comparison lands from one seed to the next.

    python -m benchmarks.seed_spread --path ../shared/data/online_retail/online_retail.csv.gz
                                            (make evaluate-seeds)

The evaluation protocol of ``make evaluate-online-retail`` (``behavior_model.evaluate``: both
test settings, a fifth of the users held out for validation) run once per seed, for the event
transformer with and without item-text vectors, beside the baselines fitted with the same seed.
No ablations, no hybrid, no bootstrap: the spread over seeds is the interval here. The source is
cleaned once (the pipeline's Spark job, into the evaluation lake) for both settings.

What it answers: is a margin of a few thousandths over the best baseline, or between two
variants, larger than what changing the seed alone moves? Writes
``benchmarks/results/online_retail_seeds.{json,md}`` (nothing edited by hand).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd

from behavior_model.config import LabelConfig, TrainConfig
from behavior_model.eval_report import run_environment
from behavior_model.evaluate import evaluate, event_days, load_events, local_midnight
from behavior_model.fitted import resolve_device
from behavior_model.text import TextEmbedder
from benchmarks import RESULTS
from pipeline.settings import apply_process_env
from pipeline.source_mapping import load_mapping

log = logging.getLogger(__name__)
TIMEZONE = "Europe/London"
HELD_OUT_SHARE = 0.2
# make evaluate-online-retail's two settings: (test cutoff, churn horizon override, cutoffs).
SETTINGS = (
    (date(2011, 9, 1), None, ("2011-03-01", "2011-04-01", "2011-05-01", "2011-06-01")),
    (date(2011, 10, 1), 60, ("2011-03-01", "2011-04-01", "2011-05-01", "2011-06-01",
                             "2011-07-01", "2011-08-01")),
)  # fmt: skip
VARIANTS = {"behavior_model": True, "behavior_model_no_text": False}  # name: use_text
BASELINES = ("logistic_regression", "lightgbm")
MODELS = ["recency", *BASELINES, *VARIANTS]  # the report's order


def run(events: pd.DataFrame, seeds: list[int], embedder: TextEmbedder) -> list[dict]:
    """One row per (test cutoff, label, seed, model): test ROC-AUC and ECE, validation ROC-AUC."""
    labels = load_mapping("online_retail").labels
    rows = []
    for test_day, churn_horizon, cutoffs in SETTINGS:
        horizons = LabelConfig(
            labels.purchase_horizon_days,
            churn_horizon or labels.churn_horizon_days,
            labels.lookback_days,
        )
        for seed in seeds:
            for name, use_text in VARIANTS.items():
                cfg = TrainConfig(labels=horizons, seed=seed)
                cfg = replace(cfg, model=replace(cfg.model, use_text=use_text))
                t0 = time.time()
                records, _ = evaluate(
                    events, test_cutoff=local_midnight(test_day, TIMEZONE),
                    train_cutoffs=[local_midnight(date.fromisoformat(d), TIMEZONE) for d in cutoffs],
                    cfg=cfg, bootstrap=0, ablations=False, families=("behavior_model",),
                    embedder=embedder if use_text else None, timezone=TIMEZONE,
                    held_out_share=HELD_OUT_SHARE,
                )  # fmt: skip
                log.info("%s seed %d %s: %.0fs", test_day, seed, name, time.time() - t0)
                rows += rows_of(records, variant=name, seed=seed)
    return rows


def rows_of(records: list[dict], *, variant: str, seed: int) -> list[dict]:
    """The report's rows from one evaluation of ``variant`` (its ``behavior_model`` records
    renamed): the baselines' only with the first variant, so each is counted once per seed."""
    rows = []
    for r in records:
        if r["model"] != "behavior_model" and variant != next(iter(VARIANTS)):
            continue
        rows.append({
            "test_cutoff": r["test_cutoff"], "label": r["label"], "seed": seed,
            "model": variant if r["model"] == "behavior_model" else r["model"],
            "roc_auc": r["roc_auc"], "ece": r["ece"], "val_roc_auc": r.get("val_roc_auc"),
        })  # fmt: skip
    return rows


def summary(rows: list[dict]) -> pd.DataFrame:
    """Per (test cutoff, label, model): test ROC-AUC mean, sd, min and max over seeds, mean ECE
    and validation ROC-AUC, and the margin over the better baseline of the same seed."""
    df = pd.DataFrame(rows)
    keys = ["test_cutoff", "label", "seed"]
    best = df[df["model"].isin(BASELINES)].groupby(keys)["roc_auc"].max().rename("best_baseline")
    df = df.join(best, on=keys).assign(margin=lambda d: d["roc_auc"] - d["best_baseline"])
    order = {"label": ["purchase", "churn"], "model": MODELS}
    df = df.assign(**{c: pd.Categorical(df[c], categories=v) for c, v in order.items()})
    out = df.groupby(["test_cutoff", "label", "model"], observed=True).agg(
        seeds=("seed", "nunique"), roc_auc=("roc_auc", "mean"), sd=("roc_auc", "std"),
        low=("roc_auc", "min"), high=("roc_auc", "max"), ece=("ece", "mean"),
        val_roc_auc=("val_roc_auc", "mean"), margin=("margin", "mean"),
        margin_low=("margin", "min"), margin_high=("margin", "max"),
    )  # fmt: skip
    return out.reset_index()


def markdown(rows: list[dict], run: dict) -> str:
    table = summary(rows)
    fmt = lambda x: "n/a" if x is None or pd.isna(x) else f"{x:.3f}"  # noqa: E731
    signed = lambda x: f"{x:+.3f}"  # noqa: E731
    lines = [
        "# Online Retail: the spread over seeds",
        "",
        "Written by `python -m benchmarks.seed_spread` (module docstring; nothing here is edited "
        f"by hand). Seeds: {', '.join(str(s) for s in sorted({r['seed'] for r in rows}))}. "
        f"Device: {run['device']}, torch {run['torch']}. Margin: over the better of logistic "
        "regression and LightGBM fitted with the same seed; its min and max are over seeds.",
        "",
        "| test cutoff | label | model | seeds | ROC-AUC mean | sd | min | max | margin mean "
        "| margin min | margin max | ECE mean | val. ROC-AUC mean |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.test_cutoff} | {r.label} | {r.model} | {r.seeds} | {r.roc_auc:.3f} | "
            f"{fmt(r.sd)} | {r.low:.3f} | {r.high:.3f} | {signed(r.margin)} | "
            f"{signed(r.margin_low)} | {signed(r.margin_high)} | {r.ece:.3f} | "
            f"{fmt(r.val_roc_auc)} |"
        )
    df = pd.DataFrame(rows)
    pivot = df[df["model"].isin(VARIANTS)].pivot_table(
        index=["test_cutoff", "label", "seed"], columns="model", values=["roc_auc", "val_roc_auc"]
    )
    diff = (pivot.xs("behavior_model_no_text", axis=1, level=1)
            - pivot.xs("behavior_model", axis=1, level=1))  # fmt: skip
    lines += [
        "",
        "## No text minus text, seed by seed (same seed, same users)",
        "",
        "| test cutoff | label | test ROC-AUC: per seed | mean | validation ROC-AUC: per seed "
        "| mean |",
        "|---|---|---|---|---|---|",
    ]
    for (cutoff, label), g in sorted(
        diff.groupby(level=[0, 1]), key=lambda k: (k[0][0], k[0][1] != "purchase")
    ):
        lines.append(
            f"| {cutoff} | {label} | {', '.join(signed(x) for x in g['roc_auc'])} | "
            f"{signed(g['roc_auc'].mean())} | {', '.join(signed(x) for x in g['val_roc_auc'])} | "
            f"{signed(g['val_roc_auc'].mean())} |"
        )
    lines += ["", f"Command: `{run['command']}`; {run['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--path", type=Path, help="the Online Retail CSV (.csv.gz)")
    p.add_argument("--seeds", default="7,11,22,33", help="comma-separated")
    p.add_argument("--out", type=Path, default=RESULTS / "online_retail_seeds.json")
    p.add_argument(
        "--markdown-only", action="store_true",
        help="rewrite the .md from the JSON already at --out, fitting nothing",
    )  # fmt: skip
    a = p.parse_args(argv)
    if a.markdown_only:
        saved = json.loads(a.out.read_text())
        a.out.with_suffix(".md").write_text(markdown(saved["rows"], saved["run"]))
        return
    if a.path is None or not a.path.exists():
        raise SystemExit(f"missing {a.path} (../shared/data/online_retail)")
    settings = apply_process_env()
    mapping = load_mapping("online_retail")
    # One load for both settings: from the earliest training cutoff to the latest test cutoff.
    first, last = event_days(
        [local_midnight(date.fromisoformat(c[0]), TIMEZONE) for _, _, c in SETTINGS],
        local_midnight(max(t for t, _, _ in SETTINGS), TIMEZONE),
        mapping.labels,
    )
    t0 = time.time()
    events = load_events(mapping, a.path, first, last, settings=settings)
    embedder = TextEmbedder(TrainConfig().text_model_path, cache_dir=settings.cache_dir)
    rows = run(events, [int(s) for s in a.seeds.split(",")], embedder)
    command = "python -m benchmarks.seed_spread " + " ".join(argv or sys.argv[1:])
    env = run_environment(resolve_device("auto")) | {
        "command": command, "seconds": time.time() - t0,
    }  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"run": env, "rows": rows}, indent=2) + "\n")
    text = markdown(rows, env)
    a.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
