"""User profiles (``user_profiles``): who each user is at a cutoff, in plain counts. Pure pandas.

Computed from events strictly before the cutoff (the end of the score date). A basket is one
(user, event_time) group, as in ``behavior_model.features``. Missing is NULL with a meaning (no
purchase yet, no category), never NaN: the column comments in ``pipeline/tables.py`` say which.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.contracts import PROFILE_COLUMNS, PROFILE_WINDOWS_DAYS


def user_profiles(events: pd.DataFrame, cutoff: pd.Timestamp, users: np.ndarray) -> pd.DataFrame:
    """One row per user in ``users`` (same order), columns ``PROFILE_COLUMNS``; None where a
    value does not exist (never NaN)."""
    past = events[(events["event_time"] < cutoff) & events["user_id"].isin(users)]
    age = (cutoff - past["event_time"]).dt.total_seconds() / 86400.0
    is_buy = past["event_type"] == "purchase"
    frame = pd.DataFrame(
        {
            "user_id": past["user_id"].to_numpy(),
            "t": past["event_time"].to_numpy(),
            "age": age.to_numpy(),
            "is_buy": is_buy.to_numpy(),
            "is_return": (past["event_type"] == "return").to_numpy(),
            "amount": (past["price"].fillna(0) * past["quantity"].fillna(0))
            .where(is_buy, 0.0)
            .to_numpy(),
            "category": past["category"].to_numpy(),
        }
    )
    g = frame.groupby("user_id")
    out = pd.DataFrame(index=pd.Index(users, name="user_id"))
    out["recency_days"] = g["age"].min()
    buys = frame[frame["is_buy"]]
    out["purchase_recency_days"] = buys.groupby("user_id")["age"].min()
    out["orders"] = buys.drop_duplicates(["user_id", "t"]).groupby("user_id").size()
    out["monetary"] = g["amount"].sum()
    for w in PROFILE_WINDOWS_DAYS:
        out[f"events_{w}d"] = frame[frame["age"] < w].groupby("user_id").size()
    out["tenure_days"] = g["age"].max()
    out[["orders", "events_7d", "events_30d", "events_90d"]] = (
        out[["orders", "events_7d", "events_30d", "events_90d"]].fillna(0).astype("int64")
    )
    out["avg_basket_value"] = out["monetary"] / out["orders"].where(out["orders"] > 0)
    cats = frame.dropna(subset=["category"])
    counts = cats.groupby(["user_id", "category"]).size().rename("n").reset_index()
    counts = counts.sort_values(["user_id", "n", "category"], ascending=[True, False, True])
    out["favourite_categories"] = (
        counts.groupby("user_id").head(3).groupby("user_id")["category"].agg(", ".join)
    )
    buys_n, returns_n = g["is_buy"].sum(), g["is_return"].sum()
    denominator = (buys_n + returns_n).where(lambda x: x > 0)
    out["return_share"] = returns_n / denominator
    out = out[list(PROFILE_COLUMNS)]
    return out.astype(object).where(out.notna(), None)
