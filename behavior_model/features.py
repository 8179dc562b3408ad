"""RFM and activity-window features per (user, cutoff): pure pandas, no model, no I/O.

Computed from events strictly before the cutoff. A "basket" is one (user, event_time) group: an
invoice in Online Retail, a single event in a clickstream. The baselines are fitted on them and the
behaviour model's heads see them as context (``ModelConfig.use_context``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.contracts import FEATURE_NAMES, FEATURE_WINDOWS_DAYS, NEVER_DAYS


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
    for w in FEATURE_WINDOWS_DAYS:
        recent = baskets[baskets["age"] < w]
        out[f"baskets_{w}d"] = recent.groupby("user_id").size()
        out[f"monetary_{w}d"] = frame[frame["age"] < w].groupby("user_id")["amount"].sum()
    out["mean_gap_days"] = (out["tenure_days"] - out["recency_days"]) / (out["baskets"] - 1).where(
        out["baskets"] > 1
    )
    fill = {"purchase_recency_days": NEVER_DAYS, "mean_gap_days": NEVER_DAYS}
    return out.fillna(fill).fillna(0.0).astype(float)[list(FEATURE_NAMES)]


def transform(features: pd.DataFrame) -> np.ndarray:
    """Signed log1p: heavy-tailed counts and amounts on a scale linear models and nets can use."""
    x = features.to_numpy(dtype=float)
    return np.sign(x) * np.log1p(np.abs(x))


def inverse_transform(x: np.ndarray) -> np.ndarray:
    """The features back from ``transform`` (exact up to float rounding)."""
    x = np.asarray(x, dtype=float)
    return np.sign(x) * np.expm1(np.abs(x))
