"""The hybrid family: LightGBM on the analyst's RFM and activity features plus what the event
transformer read in each user's sequence (its logits and its user vector, reduced), cross-fitted
by user folds so that LightGBM never sees a sequence output of a user the transformer trained on.

Cross-fitting. Users fall into ``folds`` folds by a stable hash of their id (the same fold at
every cutoff and in every run). For fold k, a transformer is fitted on the events of the other
folds' users (with its usual training and validation cutoffs) and reads fold k's users at every
cutoff the hybrid needs: the training cutoffs, the validation cutoff and the scored cutoff. Every
sequence output LightGBM is fitted on or scores is therefore out of fold.

Each fold's transformer learns its own basis for the user vector, so the vectors are mapped onto
fold 0's basis by an affine least-squares fit on the same anchor users (everyone eligible at the
anchor cutoff, read by both models; no labels involved) before a PCA fitted on the training rows
reduces them. The logits need no mapping: every fold predicts the same targets.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from behavior_model.baselines import fit_lightgbm, stopping_rows
from behavior_model.calibration import logit
from behavior_model.config import LABELS
from behavior_model.features import transform
from pipeline.contracts import FEATURE_NAMES

log = logging.getLogger(__name__)

SEQ_LOGITS = tuple(f"seq_logit_{label}" for label in LABELS)
VECTOR_PREFIX = "seq_vec_"


def user_fold(user_ids: np.ndarray, folds: int) -> np.ndarray:
    """Each user's fold in [0, folds): CRC-32 of the id, stable across runs and processes
    (Python's ``hash`` of a string is salted per process)."""
    return np.fromiter(
        (zlib.crc32(str(u).encode()) % folds for u in user_ids), dtype=np.int64, count=len(user_ids)
    )


def sequence_outputs(predictor, events: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """One row per user eligible at ``cutoff`` (index user_id): the transformer's uncalibrated
    logits (``SEQ_LOGITS``) and its user vector (``seq_vec_0``...)."""
    ex = predictor.examples(events, cutoff, with_labels=False)
    raw, vectors = predictor.predict_with_vectors(ex, calibrated=False)
    frame = pd.DataFrame(
        logit(raw), columns=list(SEQ_LOGITS), index=pd.Index(ex.user_id, name="user_id")
    )
    vec = pd.DataFrame(
        vectors, index=frame.index, columns=[f"{VECTOR_PREFIX}{i}" for i in range(vectors.shape[1])]
    )
    return pd.concat([frame, vec], axis=1)


def _affine_map(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(d + 1, d) least-squares affine map from ``source`` rows onto ``target`` rows."""
    design = np.hstack([source, np.ones((len(source), 1))])
    return np.linalg.lstsq(design, target, rcond=None)[0]


def cross_fit_sequence(
    events: pd.DataFrame,
    *,
    cutoffs: list[pd.Timestamp],
    anchor_cutoff: pd.Timestamp,
    fit_fold: Callable[[pd.DataFrame], object],
    folds: int,
) -> dict[pd.Timestamp, pd.DataFrame]:
    """Out-of-fold ``sequence_outputs`` of every user at every cutoff in ``cutoffs``, vectors in
    fold 0's basis. ``fit_fold(events)`` fits a transformer on the given events and returns its
    predictor; it is called once per fold with the other folds' users' events."""
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 user folds, got {folds}")
    users = events["user_id"].unique()
    fold = user_fold(users, folds)
    out: dict[pd.Timestamp, list[pd.DataFrame]] = {t: [] for t in cutoffs}
    reference: pd.DataFrame | None = None
    for k in range(folds):
        inside = events["user_id"].isin(users[fold == k])
        predictor = fit_fold(events[~inside])
        anchors = sequence_outputs(predictor, events, anchor_cutoff).filter(like=VECTOR_PREFIX)
        if reference is None:
            reference = anchors
        mapping = _affine_map(anchors.to_numpy(), reference.loc[anchors.index].to_numpy())
        mine = events[inside]
        for t in cutoffs:
            seq = sequence_outputs(predictor, mine, t)
            vec = seq.filter(like=VECTOR_PREFIX)
            design = np.hstack([vec.to_numpy(), np.ones((len(vec), 1))])
            seq[vec.columns] = design @ mapping
            out[t].append(seq)
        log.info("hybrid: fold %d/%d fitted on %d users", k + 1, folds, int((fold != k).sum()))
    return {t: pd.concat(parts) for t, parts in out.items()}


def with_sequence(rows: pd.DataFrame, sequence: dict[pd.Timestamp, pd.DataFrame]) -> pd.DataFrame:
    """``rows`` (``baselines.labelled_rows``: user_id, cutoff, features, labels) with each user's
    sequence outputs at the row's cutoff. Every row must have them: a missing one is an error,
    never a silent zero."""
    parts = []
    for t, group in rows.groupby("cutoff", sort=True):
        seq = sequence[pd.Timestamp(t)]
        joined = group.join(seq, on="user_id")
        missing = joined[list(SEQ_LOGITS)].isna().any(axis=1)
        if missing.any():
            raise ValueError(
                f"{int(missing.sum())} users at {pd.Timestamp(t).date()} have no sequence outputs"
            )
        parts.append(joined)
    return pd.concat(parts).loc[rows.index]


class HybridModel:
    """LightGBM per label on the RFM features, the sequence logits and (``use_vectors``) the
    first ``n_components`` principal components of the user vector; tree count early-stopped on
    the last training cutoff (its held-out users, with ``held_out_share``), then refitted on all
    (``baselines.fit_lightgbm``, ``baselines.stopping_rows``)."""

    def __init__(
        self,
        *,
        n_components: int = 8,
        use_vectors: bool = True,
        seed: int = 7,
        held_out_share: float | None = None,
    ) -> None:
        self.n_components = n_components
        self.use_vectors = use_vectors
        self.seed = seed
        self.held_out_share = held_out_share
        self.models: dict[str, object] = {}
        self.pca = None

    def _matrix(self, rows: pd.DataFrame) -> np.ndarray:
        parts = [transform(rows[list(FEATURE_NAMES)]), rows[list(SEQ_LOGITS)].to_numpy(float)]
        if self.use_vectors:
            parts.append(self.pca.transform(rows.filter(like=VECTOR_PREFIX).to_numpy(float)))
        return np.hstack(parts)

    def fit(self, rows: pd.DataFrame) -> HybridModel:
        if self.use_vectors:
            from sklearn.decomposition import PCA

            vectors = rows.filter(like=VECTOR_PREFIX).to_numpy(float)
            self.pca = PCA(min(self.n_components, vectors.shape[1]), random_state=self.seed)
            self.pca.fit(vectors)
        x = self._matrix(rows)
        held, fitted = stopping_rows(rows, self.held_out_share)
        for label in LABELS:
            y = rows[label].to_numpy(dtype=float)
            self.models[label], _ = fit_lightgbm(x, y, held=held, fitted=fitted, seed=self.seed)
        return self

    def predict(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        x = self._matrix(rows)
        return {label: self.models[label].predict_proba(x)[:, 1] for label in LABELS}
