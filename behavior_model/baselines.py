"""What a careful analyst builds in an afternoon: RFM and activity-window features, and the
recency, logistic-regression and LightGBM models on them.

Features are computed per (user, cutoff) from events strictly before the cutoff. A "basket" is one
(user, event_time) group: an invoice in Online Retail, a single event in a clickstream. The same
features feed the transformer's head as context (``ModelConfig.context_features``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOWS_DAYS = (7, 30, 90, 180, 365)


def rfm_features(events: pd.DataFrame, cutoff: pd.Timestamp, users: np.ndarray) -> pd.DataFrame:
    """One row per user in ``users`` (same order): recency, frequency, monetary, activity windows."""
    past = events[events["event_time"] < cutoff]
    past = past[past["user_id"].isin(users)]
    age_days = (cutoff - past["event_time"]).dt.total_seconds() / 86400.0
    amount = (past["price"].fillna(0) * past["quantity"].fillna(0)).where(
        past["event_type"] == "purchase", 0.0
    )
    frame = pd.DataFrame(
        {
            "user_id": past["user_id"].to_numpy(),
            "age": age_days.to_numpy(),
            "t": past["event_time"].to_numpy(),
            "is_purchase": (past["event_type"] == "purchase").to_numpy(),
            "is_return": (past["event_type"] == "return").to_numpy(),
            "amount": amount.to_numpy(),
            "item_id": past["item_id"].to_numpy(),
        }
    )
    g = frame.groupby("user_id")
    out = pd.DataFrame(index=pd.Index(users, name="user_id"))
    out["recency_days"] = g["age"].min()
    out["tenure_days"] = g["age"].max()
    out["events"] = g.size()
    baskets = frame.drop_duplicates(["user_id", "t"])
    out["baskets"] = baskets.groupby("user_id").size()
    buys = frame[frame["is_purchase"]]
    out["purchase_recency_days"] = buys.groupby("user_id")["age"].min()
    out["purchase_baskets"] = buys.drop_duplicates(["user_id", "t"]).groupby("user_id").size()
    out["monetary"] = g["amount"].sum()
    out["returns"] = g["is_return"].sum()
    out["distinct_items"] = g["item_id"].nunique()
    for w in WINDOWS_DAYS:
        recent = baskets[baskets["age"] < w]
        out[f"baskets_{w}d"] = recent.groupby("user_id").size()
        out[f"monetary_{w}d"] = frame[frame["age"] < w].groupby("user_id")["amount"].sum()
    out["mean_gap_days"] = (out["tenure_days"] - out["recency_days"]) / (out["baskets"] - 1).where(
        out["baskets"] > 1
    )
    fill = {"purchase_recency_days": 400.0, "mean_gap_days": 400.0}
    return out.fillna(fill).fillna(0.0).astype(float)


def transform(features: pd.DataFrame) -> np.ndarray:
    """Signed log1p: heavy-tailed counts and amounts on a scale linear models and nets can use."""
    x = features.to_numpy(dtype=float)
    return np.sign(x) * np.log1p(np.abs(x))


class Baselines:
    """recency, logistic_regression and lightgbm for one label, trained on the same examples."""

    NAMES = ("recency", "logistic_regression", "lightgbm")

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed
        self.models: dict[str, object] = {}

    def fit(self, features: pd.DataFrame, y: np.ndarray) -> Baselines:
        import lightgbm as lgb
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = transform(features)
        rec = transform(features[["recency_days"]])
        self.models["recency"] = LogisticRegression().fit(rec, y)
        self.models["logistic_regression"] = make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)
        ).fit(x, y)
        self.models["lightgbm"] = lgb.LGBMClassifier(
            n_estimators=300,
            learning_rate=0.03,
            num_leaves=15,
            min_child_samples=40,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            reg_lambda=1.0,
            random_state=self.seed,
            verbose=-1,
        ).fit(x, y)
        return self

    def predict(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        x = transform(features)
        rec = transform(features[["recency_days"]])
        return {
            "recency": self.models["recency"].predict_proba(rec)[:, 1],
            "logistic_regression": self.models["logistic_regression"].predict_proba(x)[:, 1],
            "lightgbm": self.models["lightgbm"].predict_proba(x)[:, 1],
        }
