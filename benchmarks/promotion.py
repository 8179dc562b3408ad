"""The family choice's cost: ``promotion.choose_family`` on 10k, 100k and 1M validation users.

    python -m benchmarks.promotion            (make bench-promotion)

A training run weighs each later family against the current choice with a paired bootstrap of the
mean validation ROC-AUC (200 draws, both labels). Synthetic validation users with two families'
probabilities (scores with and without ties), timed:

- ``choose_family`` itself, whose draws sort each model's scores once
  (``metrics.RankedScores``: O(users) per draw);
- the same draws with ``roc_auc_score`` on the resampled users, a few draws timed and scaled to
  200: what each draw cost before ``RankedScores``.

Target: at 1M validation users the choice takes <= 60 s (it runs once per training run, beside
transformer fits of minutes to hours). Results merge into benchmarks/results/promotion.json (one
entry per machine) and promotion.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date

import numpy as np

from behavior_model.config import LABELS
from behavior_model.promotion import choose_family
from benchmarks import merge_entry

DRAWS = 200
TARGET_S = 60.0
TARGET_USERS = 1_000_000


def validation_users(users: int, *, ties: bool, seed: int = 0):
    """Labels (users x LABELS) and two families' probabilities, the second slightly better."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, (users, len(LABELS)))
    noise = rng.random((2, users, len(LABELS)))
    first, second = (1 / (1 + np.exp(-(n + s * y))) for n, s in zip(noise, (0.8, 0.9), strict=True))
    if ties:  # probabilities on a grid, as a tree model's or a rounded score's
        first, second = np.round(first, 2), np.round(second, 2)
    labels = {label: y[:, j] for j, label in enumerate(LABELS)}
    return labels, {"first": first, "second": second}


def sklearn_seconds_per_draw(labels, probabilities, *, draws: int = 3, seed: int = 0) -> float:
    """One paired draw the way it was computed before: resample, then ``roc_auc_score`` per label
    and family on the drawn users."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    y = np.column_stack([labels[label] for label in LABELS])
    t0 = time.perf_counter()
    for _ in range(draws):
        i = rng.integers(0, len(y), len(y))
        for p in probabilities.values():
            [roc_auc_score(y[i, j], p[i, j]) for j in range(y.shape[1])]
    return (time.perf_counter() - t0) / draws


def run(sizes: list[int]) -> list[dict]:
    rows = []
    for users in sizes:
        for ties in (False, True):
            labels, probabilities = validation_users(users, ties=ties)
            t0 = time.perf_counter()
            chosen, table = choose_family(labels, probabilities, bootstrap=DRAWS)
            seconds = time.perf_counter() - t0
            before = sklearn_seconds_per_draw(labels, probabilities) * DRAWS
            rows.append({
                "users": users, "ties": ties, "draws": DRAWS, "seconds": seconds,
                "sklearn_seconds_scaled": before, "chosen": chosen,
                "lead": table["second"]["lead"], "lead_low": table["second"]["lead_low"],
                "lead_high": table["second"]["lead_high"],
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


def targets(rows: list[dict]) -> list[dict]:
    at = [r for r in rows if r["users"] == TARGET_USERS]
    return [
        {
            "target": f"choose_family, {TARGET_USERS:,} validation users, {DRAWS} paired draws"
            f"{' (tied scores)' if r['ties'] else ''} <= {TARGET_S:.0f} s",
            "measured": f"{r['seconds']:.1f} s",
            "met": r["seconds"] <= TARGET_S,
        }
        for r in at
    ]


def markdown(entries: list[dict]) -> str:
    lines = ["# Family choice benchmark", "", "Command: `make bench-promotion` (python -m benchmarks.promotion)", ""]  # fmt: skip
    for e in entries:
        lines += [f"## {e['machine']}, {e['date']}", "", f"numpy {e['numpy']}, scikit-learn {e['sklearn']}, on the CPU.", ""]  # fmt: skip
        lines += ["### Targets", "", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |" for t in e["targets"]]  # fmt: skip
        lines += [
            "",
            "### choose_family, two families, both labels",
            "",
            "| validation users | scores | paired draws | seconds | the same draws with roc_auc_score (s, 3 timed, scaled) | lead [95% CI] |",
            "|---:|---|---:|---:|---:|---|",
        ]  # fmt: skip
        for r in e["rows"]:
            lines.append(
                f"| {r['users']:,} | {'tied (2 decimals)' if r['ties'] else 'distinct'} | {r['draws']} "
                f"| {r['seconds']:.1f} | {r['sklearn_seconds_scaled']:.1f} "
                f"| {r['lead']:+.4f} [{r['lead_low']:+.4f}, {r['lead_high']:+.4f}] |"
            )  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import sklearn

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000, TARGET_USERS])
    a = p.parse_args(argv)
    rows = run(a.users)
    entry = {
        "machine": f"{platform.node()} ({os.cpu_count()} cores)",
        "date": date.today().isoformat(),  # when it was measured: a label, decides nothing
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "rows": rows,
        "targets": targets(rows),
    }
    print(merge_entry("promotion", entry, markdown))


if __name__ == "__main__":
    main()
