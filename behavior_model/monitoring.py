"""Model health: input and score drift (PSI) and realised performance. Pure numpy/pandas.

**Reference.** At training time the champion stores, per input feature (the RFM context) and per
score, the bin edges and proportions of a reference population (``build_reference``): the users
eligible on the training date, as the trained model scores them. Bins are the reference deciles
(outer bins open); a feature that was constant in the reference gets the bins below, at and
above its value (no division by zero anywhere).

**PSI** = sum over bins of (cur - ref) * ln(cur / ref), proportions floored at ``EPS``.

**Realised performance**: once a score date's label window has passed, the stored scores against
what happened (``realised_performance``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from behavior_model.metrics import binary_metrics

EPS = 1e-4
QUANTILES = np.linspace(0.1, 0.9, 9)


def bin_edges(values: np.ndarray) -> list[float]:
    """Inner edges of lower-closed bins: the reference deciles, so each bin holds about a tenth
    of the reference and the outer bins are open. A constant reference gets the bins below, at
    and above its value."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return []
    if v.min() == v.max():
        return [float(v[0]), float(np.nextafter(v[0], np.inf))]
    return sorted(set(np.quantile(v, QUANTILES).tolist()))


# A value this close to a bin edge (relative) counts as on it: a sum taken in another order
# (Spark's partitions against pandas) differs in the last bits, and must not move a user across
# an edge.
EDGE_TOLERANCE = 1e-9


def proportions(values: np.ndarray, edges: list[float]) -> np.ndarray:
    counts = bin_counts(values, edges)
    return counts / max(counts.sum(), 1.0)


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Values per bin (``len(edges) + 1`` bins, lower-closed); see EDGE_TOLERANCE."""
    v = np.asarray(values, dtype=float)
    e = np.asarray(edges, dtype=float)
    if len(e) and len(v):
        j = np.clip(np.searchsorted(e, v), 0, len(e) - 1)
        for near in (j, np.maximum(j - 1, 0)):
            edge = e[near]
            v = np.where(
                np.abs(v - edge) <= EDGE_TOLERANCE * np.maximum(1.0, np.abs(edge)), edge, v
            )
    idx = np.searchsorted(e, v, side="right")
    return np.bincount(idx, minlength=len(edges) + 1).astype(float)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    r = np.maximum(np.asarray(reference, float), EPS)
    c = np.maximum(np.asarray(current, float), EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def build_reference(inputs: pd.DataFrame, scores: pd.DataFrame, *, described: str) -> dict:
    """The training reference stored with a model: {kind: {name: {edges, proportions, mean}}}."""

    def one(values: np.ndarray) -> dict:
        edges = bin_edges(values)
        return {
            "edges": edges,
            "proportions": proportions(values, edges).tolist(),
            "mean": float(np.mean(values)) if len(values) else math.nan,
        }

    return {
        "described": described,
        "input": {c: one(inputs[c].to_numpy(float)) for c in inputs.columns},
        "score": {c: one(scores[c].to_numpy(float)) for c in scores.columns},
    }


@dataclass(frozen=True)
class Drift:
    name: str
    kind: str  # input | score
    psi: float | None
    reference_mean: float | None
    current_mean: float
    status: str  # ok | ok_trend | warn | fail | no_reference
    message: str


def drift(
    reference: dict | None,
    inputs: pd.DataFrame | Iterable[pd.DataFrame],
    scores: pd.DataFrame | Iterable[pd.DataFrame],
    *,
    warn: float,
    fail: float,
    trend: tuple[str, ...] | list[str] = (),
) -> list[Drift]:
    """PSI of every input and score column against ``reference``; one Drift per column. Inputs
    named in ``trend`` (trending by construction) get status ok_trend whatever their PSI.

    ``inputs`` and ``scores`` are frames or iterables of frames (batches read from Parquet): bin
    counts, sums and counts are accumulated batch by batch, so a million users never sit in
    memory at once.
    """
    out: list[Drift] = []
    for kind, frames in (("input", inputs), ("score", scores)):
        # name -> [bin counts (None without a reference), sum, n], in column order
        stats: dict[str, list] = {}
        for frame in [frames] if isinstance(frames, pd.DataFrame) else frames:
            for name in frame.columns:
                values = frame[name].to_numpy(float)
                ref = None if reference is None else reference.get(kind, {}).get(name)
                acc = stats.setdefault(name, [None, 0.0, 0])
                if ref is not None:
                    counts = bin_counts(values, ref["edges"])
                    acc[0] = counts if acc[0] is None else acc[0] + counts
                acc[1] += float(values.sum())
                acc[2] += len(values)
        for name, (counts, total, n) in stats.items():
            current_mean = total / n if n else 0.0
            ref = None if reference is None else reference.get(kind, {}).get(name)
            if ref is None:
                why = (
                    "the champion carries no training reference (trained before monitoring "
                    "existed): retrain to monitor drift"
                    if reference is None
                    else f"{name} is not in the champion's training reference"
                )
                out.append(Drift(name, kind, None, None, current_mean, "no_reference", why))
                continue
            current = counts / max(counts.sum(), 1.0)
            value = psi(np.asarray(ref["proportions"]), current)
            status = "fail" if value >= fail else "warn" if value >= warn else "ok"
            if name in trend and status != "ok":
                status = "ok_trend"
            message = {
                "ok_trend": f"trends by construction (mapping monitoring.trend_features); PSI "
                f"{value:.3f} never alarms",
                "ok": f"stable (PSI {value:.3f} < {warn})",
                "warn": f"shifted (PSI {value:.3f} >= warn {warn})",
                "fail": f"drifted (PSI {value:.3f} >= fail {fail})",
            }[status]
            out.append(Drift(name, kind, value, float(ref["mean"]), current_mean, status, message))
    return out


# Worst first: the status a run reports is the first of these any row has, else "ok".
SEVERITY = ("fail", "warn", "no_reference")


def worst_status(statuses) -> str:
    """The run's model-health status from its rows' statuses (ok_trend counts as ok)."""
    present = set(statuses)
    return next((s for s in SEVERITY if s in present), "ok")


def labels_complete_on(score_date: date, horizon_days: int) -> date:
    """The first run date whose lake holds the whole label window [score_date + 1, + horizon)."""
    return score_date + timedelta(days=horizon_days)


@dataclass(frozen=True)
class Realised:
    status: str  # pending | realised | undefined
    users: int
    positive_rate: float | None
    mean_probability: float
    roc_auc: float | None
    pr_auc: float | None
    ece: float | None
    message: str


def realised_performance(
    y: np.ndarray | None, p: np.ndarray, *, score_date: date, complete_on: date
) -> Realised:
    """Metrics of stored probabilities ``p`` against outcomes ``y`` (None = not yet known)."""
    p = np.asarray(p, float)
    mean_p = float(p.mean()) if len(p) else 0.0
    if y is None:
        return Realised(
            "pending", len(p), None, mean_p, None, None, None,
            f"labels for {score_date} are complete on {complete_on}; metrics then",
        )  # fmt: skip
    m = binary_metrics(y, p)
    if math.isnan(m["roc_auc"]):
        return Realised(
            "undefined", len(p), m["positive_rate"], mean_p, None, None, m["ece"],
            f"every user had the same outcome (positive rate {m['positive_rate']:.2f}): "
            "ROC-AUC and PR-AUC are undefined",
        )  # fmt: skip
    return Realised(
        "realised", len(p), m["positive_rate"], mean_p, m["roc_auc"], m["pr_auc"], m["ece"],
        f"{len(p)} users; outcome known since {complete_on}",
    )  # fmt: skip
