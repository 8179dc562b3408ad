"""Reasons behind each score: ablation attribution (Captum ``FeatureAblation``) over the
sequence model's inputs, grouped into drivers a person can read.

A driver is a group of inputs and its weight is how much the label's logit moves when the group
is taken away:
- ``events:<type>:<window>``: the user's events of one type in one age window (last 7 days, 8 to 30
  days, older) are removed from the sequence the model reads (masked out of attention): "what if
  these 3 add-to-carts had not happened";
- ``feature:<name>``: one RFM feature is set to the training average.
weight = logit(user) - logit(user without the driver), in logit units: > 0 means the driver raises
the probability. The top ``top_k`` by absolute weight are kept. Gradient paths (integrated
gradients) were tried first: from an all-zero baseline they credit "having any history at all"
to whichever group holds the most events, which reads as nonsense to an analyst.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from behavior_model.config import LABELS
from behavior_model.data import EVENT_TYPE_IDS, Examples, collate
from behavior_model.features import FEATURE_NAMES, NEVER_DAYS, inverse_transform

EVENT_NAMES = {
    "view": ("product view", "product views"),
    "cart": ("add-to-cart", "add-to-carts"),
    "wishlist": ("wishlist add", "wishlist adds"),
    "purchase": ("purchase", "purchases"),
    "return": ("return", "returns"),
}
# (code, upper bound in days, words)
WINDOWS = (("7d", 7, "in the last 7 days"), ("30d", 30, "8 to 30 days ago"), ("older", None, "more than 30 days ago"))  # fmt: skip
_TYPE_OF_ID = {i: t for t, i in EVENT_TYPE_IDS.items()}


def _days(v: float) -> str:
    n = round(v)
    return "1 day" if n == 1 else f"{n} days"


def describe_feature(name: str, v: float) -> str:
    """A feature and the user's value in words, e.g. ("purchase_recency_days", 41) -> "no purchase
    in 41 days"."""
    if name == "recency_days":
        return "active in the last day" if v < 1 else f"no activity in {_days(v)}"
    if name == "purchase_recency_days":
        if v >= NEVER_DAYS:
            return "never purchased"
        return "purchased in the last day" if v < 1 else f"no purchase in {_days(v)}"
    if name == "tenure_days":
        return f"first seen {_days(v)} ago"
    if name == "mean_gap_days":
        return (
            "a single visit so far" if v >= NEVER_DAYS else f"a visit every {v:.1f} days on average"
        )
    counts = {
        "events": "events in the history",
        "baskets": "visits in the history",
        "purchase_baskets": "orders in the history",
        "returns": "returns in the history",
        "distinct_items": "distinct items in the history",
    }
    if name in counts:
        return f"{round(v)} {counts[name]}"
    if name == "monetary":
        return f"spent {v:,.2f} in total"
    for prefix, words in (("baskets_", "visits"), ("monetary_", "spent")):
        if name.startswith(prefix) and name.endswith("d"):
            w = name[len(prefix) : -1]
            if prefix == "baskets_":
                return f"{round(v)} {words} in the last {w} days"
            return f"spent {v:,.2f} in the last {w} days"
    return f"{name} = {v:g}"


def describe_events(event_type: str, window: str, n: int) -> str:
    one, many = EVENT_NAMES.get(event_type, (event_type, event_type + "s"))
    words = dict((code, text) for code, _, text in WINDOWS)[window]
    return f"{n} {one if n == 1 else many} {words}"


def _window_of(age_days: np.ndarray) -> np.ndarray:
    out = np.full(len(age_days), "older", dtype=object)
    out[age_days < 30] = "30d"
    out[age_days < 7] = "7d"
    return out


# Group ids: one per (event type, window), then one per RFM feature.
_EVENT_GROUPS = [(t, code) for t in EVENT_TYPE_IDS for code, _, _ in WINDOWS]
_GROUP_OF = {g: i for i, g in enumerate(_EVENT_GROUPS)}


def event_groups(ex: Examples, idx: list[int], width: int) -> np.ndarray:
    """(B, width) group id of each event position (padding: -1)."""
    out = np.full((len(idx), width), -1, dtype=np.int64)
    for b, i in enumerate(idx):
        lo, hi = ex.offsets[i], ex.offsets[i + 1]
        types = [_TYPE_OF_ID.get(int(t), "view") for t in ex.tokens["event_type"][lo:hi]]
        age = (ex.cutoff[i] - ex.event_time[lo:hi]) / np.timedelta64(1, "D")
        out[b, : hi - lo] = [_GROUP_OF[(t, w)] for t, w in zip(types, _window_of(age), strict=True)]
    return out


def attributions(
    model: torch.nn.Module, ex: Examples, idx: list[int], label: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weights of every group for examples ``idx`` on label ``label``'s logit.

    Returns (weights (B, n_groups), group ids of the event positions (B, T)).
    """
    from captum.attr import FeatureAblation

    batch = {k: v for k, v in collate(ex, idx).items() if k != "targets"}
    with torch.no_grad():
        emb = model.embed(batch)
        ctx = model.standardised_context(batch)
    mask = batch["attention_mask"].float()
    groups = event_groups(ex, idx, mask.shape[1])
    n_event_groups = len(_EVENT_GROUPS)
    # Padding positions get a group of their own (ablating it changes nothing).
    pad_group = n_event_groups + (0 if ctx is None else ctx.shape[1])
    mask_groups = torch.from_numpy(np.where(groups >= 0, groups, pad_group))

    def logit(m, *rest):
        c = rest[0] if ctx is not None else None
        b = {"attention_mask": m.long()}
        return model.heads(model.user_vector(b, inputs_embeds=emb, context=c))[:, label].float()

    inputs = (mask,) if ctx is None else (mask, ctx)
    feature_mask = (mask_groups,)
    if ctx is not None:
        feature_ids = n_event_groups + torch.arange(ctx.shape[1]).expand_as(ctx)
        feature_mask = (mask_groups, feature_ids)
    with torch.no_grad():
        attr = FeatureAblation(logit).attribute(
            inputs, baselines=tuple(0.0 for _ in inputs), feature_mask=feature_mask
        )
    # FeatureAblation gives every position of a group the group's weight: read one per group.
    weights = np.zeros((len(idx), pad_group), dtype=np.float64)
    event_attr = attr[0].numpy()
    for b in range(len(idx)):
        for g in np.unique(groups[b][groups[b] >= 0]):
            weights[b, g] = event_attr[b][groups[b] == g][0]
    if ctx is not None:
        weights[:, n_event_groups:] = attr[1].numpy()
    return weights, groups


def explain(
    model: torch.nn.Module, ex: Examples, *, top_k: int = 3, batch_size: int = 256
) -> pd.DataFrame:
    """The top ``top_k`` drivers per user and label: user_id, label, rank, driver, description,
    weight (logit units; > 0 raises the probability)."""
    model.eval()
    if model.context_mlp is not None and ex.context.shape[1] != len(FEATURE_NAMES):
        raise ValueError(
            f"the model reads {ex.context.shape[1]} context features, this code names "
            f"{len(FEATURE_NAMES)}: the champion was trained with another feature set; retrain it"
        )
    raw = inverse_transform(ex.context) if ex.context.shape[1] else None
    n_event_groups = len(_EVENT_GROUPS)
    rows: list[tuple] = []
    for start in range(0, len(ex), batch_size):
        idx = list(range(start, min(start + batch_size, len(ex))))
        for j, label in enumerate(LABELS):
            weights, groups = attributions(model, ex, idx, j)
            for b, i in enumerate(idx):
                present, counts = np.unique(groups[b][groups[b] >= 0], return_counts=True)
                cands = []
                for g, n in zip(present, counts, strict=True):
                    t, w = _EVENT_GROUPS[g]
                    cands.append((f"events:{t}:{w}", describe_events(t, w, int(n)), weights[b, g]))
                if raw is not None:
                    cands += [
                        (f"feature:{name}", describe_feature(name, raw[i, f]),
                         weights[b, n_event_groups + f])
                        for f, name in enumerate(FEATURE_NAMES)
                    ]  # fmt: skip
                cands.sort(key=lambda c: (-abs(c[2]), c[0]))
                for rank, (code, text, w) in enumerate(cands[:top_k], start=1):
                    rows.append((ex.user_id[i], label, rank, code, text, float(w)))
    return pd.DataFrame(
        rows, columns=["user_id", "label", "rank", "driver", "description", "weight"]
    )
