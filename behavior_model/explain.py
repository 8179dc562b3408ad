"""Reasons behind each score: ablation (occlusion) attribution over the sequence model's inputs,
grouped into drivers a person can read.

A driver is a group of inputs and its weight is how much the label's logit moves when the group
is taken away:
- ``events:<type>:<window>``: the user's events of one type in one age window (last 7 days, 8 to 30
  days, older) are removed from the sequence the model reads (masked out of attention): "what if
  these 3 add-to-carts had not happened";
- ``feature:<name>``: one RFM feature is set to the training average.
weight = logit(user) - logit(user without the driver), in logit units: > 0 means the driver raises
the probability. The top ``top_k`` by absolute weight are kept.

Integrated gradients (Captum) were tried first: from an all-zero baseline they credit "having any
history at all" to whichever group holds the most events, which reads as nonsense to an analyst.
Captum's ``FeatureAblation`` computes the same ablations but one label and one group id at a time
(absent groups included); done directly, one backbone pass per group present in the batch gives
both labels, and the RFM features reuse the sequence vector (five times faster on the sample).
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
_WINDOW_WORDS = {code: text for code, _, text in WINDOWS}
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
    words = _WINDOW_WORDS[window]
    return f"{n} {one if n == 1 else many} {words}"


def _window_of(age_days: np.ndarray) -> np.ndarray:
    """The WINDOWS code of each age: the first window whose bound it is under (None = no bound)."""
    out = np.full(len(age_days), WINDOWS[-1][0], dtype=object)
    for code, bound, _ in reversed(WINDOWS[:-1]):
        out[age_days < bound] = code
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


@torch.no_grad()
def attributions(
    model: torch.nn.Module, ex: Examples, idx: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Ablation weights of every group for examples ``idx``, both labels.

    Returns (weights (B, n_groups, n_labels), group id of each event position (B, T), -1 = pad).
    """
    batch = {k: v for k, v in collate(ex, idx).items() if k != "targets"}
    emb = model.embed(batch)
    z = model.standardised_context(batch)
    mask = batch["attention_mask"]
    groups = event_groups(ex, idx, mask.shape[1])
    seq = model.sequence_vector(batch, inputs_embeds=emb)
    ctx = model.context_vector(z)
    weights, _ = feature_attributions(model, seq, z)
    full = model.heads(seq + ctx).float()
    g_index = torch.from_numpy(groups)
    for g in np.unique(groups[groups >= 0]):
        # Only the users who have events of group g: for the others nothing is taken away.
        has = (g_index == g).any(dim=1)
        rows = has.nonzero().squeeze(1)
        kept = {"attention_mask": mask[rows] * (g_index[rows] != g).long()}
        seq_g = model.sequence_vector(kept, inputs_embeds=emb[rows])
        ablated = model.heads(seq_g + ctx[rows]).float()
        weights[has.numpy(), g] = (full[rows] - ablated).numpy()
    return weights, groups


def feature_weights(
    model: torch.nn.Module, seq: torch.Tensor, z: torch.Tensor | None
) -> np.ndarray:
    """(B, n_features, n_labels) ablation weights of the RFM features (each set to the training
    mean) for a model whose user vector is ``seq`` + context_vector(z): every family's heads."""
    n_features = 0 if z is None else z.shape[1]
    weights = np.zeros((seq.shape[0], n_features, len(LABELS)))
    full = model.heads(seq + model.context_vector(z)).float()
    for f in range(n_features):
        z_f = z.clone()
        z_f[:, f] = 0.0  # the training mean
        ablated = model.heads(seq + model.context_vector(z_f)).float()
        weights[:, f] = (full - ablated).cpu().numpy()
    return weights


def feature_attributions(
    model: torch.nn.Module, seq: torch.Tensor, z: torch.Tensor | None
) -> tuple[np.ndarray, np.ndarray]:
    """``attributions``' result with the RFM features alone, for a family that attributes no
    event groups (the pretrained LM: taking events out of its text means reading it again per
    group)."""
    features = feature_weights(model, seq, z)
    weights = np.zeros((seq.shape[0], len(_EVENT_GROUPS) + features.shape[1], len(LABELS)))
    weights[:, len(_EVENT_GROUPS) :] = features
    return weights, np.full((seq.shape[0], 1), -1, dtype=np.int64)


def explain(
    model: torch.nn.Module, ex: Examples, *, top_k: int = 3, batch_size: int = 256,
    attribute=None,
) -> pd.DataFrame:  # fmt: skip
    """The top ``top_k`` drivers per user and label: user_id, label, rank, driver, description,
    weight (logit units; > 0 raises the probability). ``attribute(ex, idx)`` gives the weights and
    event groups (default: ``attributions`` of the event transformer ``model``)."""
    attribute = attribute or (lambda ex, idx: attributions(model, ex, idx))
    model.eval()
    if model.context_mlp is not None and ex.context.shape[1] != len(FEATURE_NAMES):
        raise ValueError(
            f"the model reads {ex.context.shape[1]} context features, this code names "
            f"{len(FEATURE_NAMES)}: the champion was trained with another feature set; retrain it"
        )
    raw = inverse_transform(ex.context) if ex.context.shape[1] else None
    n_event_groups = len(_EVENT_GROUPS)
    # Basket tokens (data.baskets) count visits: a group of them reads "3 purchases" = 3 orders.
    words = "visits" if ex.members is not None else "events"
    events_feature = FEATURE_NAMES.index("events")
    rows: list[tuple] = []
    for start in range(0, len(ex), batch_size):
        idx = list(range(start, min(start + batch_size, len(ex))))
        weights, groups = attribute(ex, idx)
        for j, label in enumerate(LABELS):
            for b, i in enumerate(idx):
                present, counts = np.unique(groups[b][groups[b] >= 0], return_counts=True)
                lo, hi = int(ex.offsets[i]), int(ex.offsets[i + 1])
                read = hi - lo
                if ex.members is not None:
                    events_read = int(ex.member_offsets[hi] - ex.member_offsets[lo])
                else:
                    events_read = read
                total = events_read if raw is None else int(round(raw[i, events_feature]))
                # The model reads the last max_events events: say so where the history is longer.
                suffix = f" (of the last {read} {words})" if total > events_read else ""
                cands = []
                for g, n in zip(present, counts, strict=True):
                    t, w = _EVENT_GROUPS[g]
                    text = describe_events(t, w, int(n)) + suffix
                    cands.append((f"events:{t}:{w}", text, weights[b, g, j]))
                if raw is not None:
                    cands += [
                        (f"feature:{name}", describe_feature(name, raw[i, f]),
                         weights[b, n_event_groups + f, j])
                        for f, name in enumerate(FEATURE_NAMES)
                    ]  # fmt: skip
                cands.sort(key=lambda c: (-abs(c[2]), c[0]))
                for rank, (code, text, w) in enumerate(cands[:top_k], start=1):
                    rows.append((ex.user_id[i], label, rank, code, text, float(w)))
    return pd.DataFrame(
        rows, columns=["user_id", "label", "rank", "driver", "description", "weight"]
    )
