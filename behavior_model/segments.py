"""Segments: k-means clusters of the behaviour model's user vectors, with stable ids and readable
descriptions. Pure numpy/pandas/scikit-learn.

- Vectors are L2-normalised (direction, not magnitude, carries the behaviour).
- **k** is chosen by the best silhouette score over ``K_RANGE`` (on a seeded sample of at most
  ``SILHOUETTE_SAMPLE`` users) when a model version first scores; while that version keeps scoring,
  the previous date's k is kept and k-means starts from the previous centroids.
- **Stable ids**: new centroids are matched to the previous date's by the Hungarian algorithm on
  cosine similarity; a match below ``MIN_MATCH_SIMILARITY`` is a new segment with a new id, and a
  previous segment nobody matched is reported as emptied.
- **Descriptions** compare a segment's profile statistics with all scored users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

K_RANGE = range(2, 9)
SILHOUETTE_SAMPLE = 3000
MIN_MATCH_SIMILARITY = 0.5
SEED = 7


@dataclass(frozen=True)
class Segmentation:
    segment_of_user: np.ndarray  # (n,) segment id per user
    centroids: dict[int, np.ndarray]  # id -> unit-norm centre (non-empty segments)
    emptied: list[int]  # previous ids with no users now
    k_choice: str


def normalise(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def choose_k(x: np.ndarray) -> tuple[int, str]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(SEED)
    sample = x if len(x) <= SILHOUETTE_SAMPLE else x[rng.choice(len(x), SILHOUETTE_SAMPLE, False)]
    scores = {}
    for k in K_RANGE:
        if k >= len(sample):
            break
        labels = KMeans(k, n_init=4, random_state=SEED).fit_predict(sample)
        if len(set(labels)) > 1:
            scores[k] = float(silhouette_score(sample, labels))
    if not scores:
        return 1, f"one segment: {len(x)} users are too few to split"
    best = max(scores, key=scores.get)
    return best, f"silhouette {scores[best]:.3f}, best of k={min(scores)}..{max(scores)}"


def segment(
    vectors: np.ndarray, previous: dict[int, np.ndarray] | None, previous_k_choice: str | None
) -> Segmentation:
    """Cluster ``vectors``; ids follow ``previous`` centroids (same model version) when given."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans

    x = normalise(vectors)
    if len(x) == 0:
        return Segmentation(np.zeros(0, int), {}, sorted(previous or {}), "no users")
    if previous:
        prev_ids = sorted(previous)
        init = normalise(np.stack([previous[i] for i in prev_ids]))
        k = min(len(prev_ids), len(x))
        km = KMeans(k, init=init[:k], n_init=1, random_state=SEED).fit(x)
        k_choice = f"kept from the previous date ({previous_k_choice})"
    else:
        k, k_choice = choose_k(x)
        km = KMeans(k, n_init=4, random_state=SEED).fit(x)
    labels = km.labels_
    centres = normalise(km.cluster_centers_)
    present = sorted(set(labels.tolist()))
    new_id = {c: None for c in present}
    emptied: list[int] = []
    if previous:
        prev_ids = sorted(previous)
        prev = normalise(np.stack([previous[i] for i in prev_ids]))
        sim = centres[present] @ prev.T
        rows, cols = linear_sum_assignment(-sim)
        for r, c in zip(rows, cols, strict=True):
            if sim[r, c] >= MIN_MATCH_SIMILARITY:
                new_id[present[r]] = prev_ids[c]
        matched = {v for v in new_id.values() if v is not None}
        emptied = [i for i in prev_ids if i not in matched]
        next_id = max(prev_ids) + 1
    else:
        next_id = 0
    # Fresh segments (all of them on a first date) get ids by size, largest first.
    sizes = np.bincount(labels, minlength=len(centres))
    for c in sorted((c for c in present if new_id[c] is None), key=lambda c: (-sizes[c], c)):
        new_id[c] = next_id
        next_id += 1
    ids = np.array([new_id[c] for c in labels], dtype=int)
    return Segmentation(ids, {new_id[c]: centres[c] for c in present}, emptied, k_choice)


# (profile column, how to aggregate, phrase when high, phrase when low)
_TRAITS = (
    ("orders", "mean", "frequent buyers", "rarely buy"),
    ("monetary", "mean", "high spend", "low spend"),
    ("events_30d", "mean", "very active this month", "quiet this month"),
    ("recency_days", "median", "inactive lately", "seen in the last days"),
    ("tenure_days", "median", "long-standing", "new"),
    ("return_share", "mean", "frequent returns", "few returns"),
)


def _trend(profiles: pd.DataFrame) -> pd.Series:
    """Events in the last 7 days against the 30-day weekly pace: < 1 means activity is falling."""
    weekly = profiles["events_30d"].astype(float) * 7 / 30
    return profiles["events_7d"].astype(float) / weekly.where(weekly > 0)


def describe(segment_profiles: pd.DataFrame, everyone: pd.DataFrame) -> str:
    """Up to three traits where the segment differs most from all users, e.g.
    "frequent buyers, high spend, activity falling"."""
    candidates: list[tuple[float, str]] = []
    for col, how, high, low in _TRAITS:
        seg = pd.to_numeric(segment_profiles[col], errors="coerce").agg(how)
        allv = pd.to_numeric(everyone[col], errors="coerce").agg(how)
        if pd.isna(seg) or pd.isna(allv):
            continue
        if allv <= 0:
            if seg > 0 and col != "return_share":
                candidates.append((1.0, high))
            continue
        ratio = seg / allv
        if ratio >= 1.5:
            candidates.append((float(np.log(ratio)), high))
        elif ratio <= 1 / 1.5:
            candidates.append((float(-np.log(max(ratio, 1e-6))), low))
    seg_trend, all_trend = _trend(segment_profiles).mean(), _trend(everyone).mean()
    if pd.notna(seg_trend) and pd.notna(all_trend) and all_trend > 0:
        ratio = seg_trend / all_trend
        if ratio <= 0.7:
            candidates.append((float(-np.log(max(ratio, 1e-6))), "activity falling"))
        elif ratio >= 1.3:
            candidates.append((float(np.log(ratio)), "activity rising"))
    if not candidates:
        return "typical users (close to the average on every profile statistic)"
    candidates.sort(key=lambda c: -c[0])
    return ", ".join(phrase for _, phrase in candidates[:3])


def assign(vectors: np.ndarray, centroids: dict[int, np.ndarray]) -> np.ndarray:
    """The segment id of each vector: the centre with the highest cosine similarity. Scoring fits
    the segments on a sample and assigns every user with this, batch by batch."""
    ids = np.array(sorted(centroids), dtype=int)
    if len(vectors) == 0 or len(ids) == 0:
        return np.zeros(len(vectors), dtype=int)
    centres = normalise(np.stack([centroids[i] for i in ids]))
    return ids[np.argmax(normalise(vectors) @ centres.T, axis=1)]
