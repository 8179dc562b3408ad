"""Evaluation artifacts for MLflow: the table of every model and metric, and the charts."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on workers

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from behavior_model.metrics import binary_metrics  # noqa: E402


def evaluation_records(
    y_by_label: dict[str, np.ndarray],
    preds: dict[str, dict[str, np.ndarray]],
    *,
    bootstrap: int = 100,
) -> list[dict]:
    """One record per (label, model) with the protocol's metrics."""
    out = []
    for label, y in y_by_label.items():
        for model, p in preds[label].items():
            out.append({"label": label, "model": model} | binary_metrics(y, p, bootstrap=bootstrap))
    return out


def records_markdown(records: list[dict]) -> str:
    lines = [
        "| label | model | users | pos. rate | ROC-AUC [95% CI] | PR-AUC | log loss | Brier | ECE | lift@10% |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        lines.append(
            f"| {r['label']} | {r['model']} | {r['n_users']:,} | {r['positive_rate']:.3f} | "
            f"{r['roc_auc']:.3f} [{r.get('roc_auc_low', float('nan')):.3f}, {r.get('roc_auc_high', float('nan')):.3f}] | "
            f"{r['pr_auc']:.3f} | {r['log_loss']:.3f} | {r['brier']:.3f} | {r['ece']:.3f} | {r['lift_top_decile']:.2f} |"
        )
    return "\n".join(lines)


def roc_figure(y_by_label, preds):
    fig, axes = plt.subplots(1, len(y_by_label), figsize=(6 * len(y_by_label), 5))
    for ax, (label, y) in zip(np.atleast_1d(axes), y_by_label.items(), strict=True):
        for model, p in preds[label].items():
            fpr, tpr, _ = roc_curve(y, p)
            ax.plot(fpr, tpr, label=f"{model} ({binary_metrics(y, p)['roc_auc']:.3f})")
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set(title=f"ROC: {label}", xlabel="false positive rate", ylabel="true positive rate")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def calibration_figure(y_by_label, preds, *, bins: int = 10):
    fig, axes = plt.subplots(1, len(y_by_label), figsize=(6 * len(y_by_label), 5))
    edges = np.linspace(0, 1, bins + 1)
    for ax, (label, y) in zip(np.atleast_1d(axes), y_by_label.items(), strict=True):
        for model, p in preds[label].items():
            idx = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
            xs = [p[idx == b].mean() for b in range(bins) if (idx == b).any()]
            ys = [y[idx == b].mean() for b in range(bins) if (idx == b).any()]
            ax.plot(xs, ys, "o-", label=f"{model} (ECE {binary_metrics(y, p)['ece']:.3f})")
        ax.plot(edges, edges, "k:", lw=1)
        ax.set(
            title=f"Calibration: {label}",
            xlabel="mean predicted probability",
            ylabel="observed rate",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lift_figure(y_by_label, preds):
    fig, axes = plt.subplots(1, len(y_by_label), figsize=(6 * len(y_by_label), 5))
    for ax, (label, y) in zip(np.atleast_1d(axes), y_by_label.items(), strict=True):
        share = np.arange(1, len(y) + 1) / len(y)
        for model, p in preds[label].items():
            gains = np.cumsum(np.asarray(y)[np.argsort(-np.asarray(p), kind="stable")]) / max(
                y.sum(), 1
            )
            ax.plot(share, gains, label=model)
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set(
            title=f"Cumulative gains: {label}",
            xlabel="share of users, highest scores first",
            ylabel="share of positives",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figures(y_by_label, preds) -> dict:
    """The evaluation charts by artifact name (the caller logs and closes them)."""
    return {
        "roc": roc_figure(y_by_label, preds),
        "calibration": calibration_figure(y_by_label, preds),
        "lift": lift_figure(y_by_label, preds),
    }


def baseline_metrics(records: list[dict]) -> dict[str, float]:
    """val_<label>_<baseline>_<metric> for every baseline record (MLflow metric names)."""
    return {
        f"val_{r['label']}_{r['model']}_{k}": r[k]
        for r in records
        if not r["model"].startswith("behavior_model")
        for k in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile")
    }


def close(figures: dict) -> None:
    for fig in figures.values():
        plt.close(fig)
