"""From events to model inputs: vocabulary, labelled examples per cutoff, batches.

An example is one user at one cutoff T: the user's last N events with event_time < T (never at or
after T: ``tests/behavior_model/test_data.py`` proves it), and the labels
- purchase: at least one purchase in [T, T + H_purchase);
- churn: no event of any type in [T, T + H_churn).
Eligible users have at least one event in [T - lookback, T).

Examples are stored ragged (one row per event plus offsets), so memory grows with the events,
not with users x N; batches are padded only to their own longest sequence.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from behavior_model.config import LabelConfig, ModelConfig
from behavior_model.features import rfm_features, transform
from pipeline.contracts import EVENT_TYPES, FEATURE_NAMES

EVENT_TYPE_IDS = {t: i + 1 for i, t in enumerate(EVENT_TYPES)}  # 0 = padding


@dataclass
class Vocabulary:
    """Item and category ids. Index 0 is padding; unknown categories share one id."""

    items: dict[str, int]
    categories: dict[str, int]
    item_hash_buckets: int

    @property
    def n_item_tokens(self) -> int:
        return 1 + len(self.items) + self.item_hash_buckets

    @property
    def n_categories(self) -> int:
        return 2 + len(self.categories)  # padding, known..., unknown

    def item_index(self, item_ids: pd.Series) -> np.ndarray:
        known = item_ids.map(self.items)
        buckets = item_ids[known.isna()].map(
            lambda s: 1 + len(self.items) + _stable_hash(s) % self.item_hash_buckets
        )
        return known.fillna(buckets).fillna(0).astype(np.int64).to_numpy()

    def category_index(self, categories: pd.Series) -> np.ndarray:
        unknown = 1 + len(self.categories)
        return categories.map(self.categories).fillna(unknown).astype(np.int64).to_numpy()

    def to_dict(self) -> dict:
        return {
            "items": self.items,
            "categories": self.categories,
            "item_hash_buckets": self.item_hash_buckets,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Vocabulary:
        return cls(d["items"], d["categories"], int(d["item_hash_buckets"]))


def _stable_hash(s: str) -> int:
    # Python's hash() is salted per process; scoring must map an item to the same bucket as training.
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")


def vocabulary_of(items: list[str], categories: list[str], cfg: ModelConfig) -> Vocabulary:
    """The vocabulary of the given top items and categories (ids in sorted order)."""
    return Vocabulary(
        {item: i + 1 for i, item in enumerate(sorted(items))},
        {c: i + 1 for i, c in enumerate(sorted(categories))},
        cfg.item_hash_buckets,
    )


def build_vocabulary(events: pd.DataFrame, cfg: ModelConfig) -> Vocabulary:
    # The most frequent items, ties broken by id (as ``jobs.examples.item_counts`` on Spark).
    counts = events["item_id"].value_counts().rename("n").rename_axis("item").reset_index()
    top = counts.sort_values(["n", "item"], ascending=[False, True]).head(cfg.item_vocab_size)
    return vocabulary_of(list(top["item"]), list(events["category"].dropna().unique()), cfg)


def time_bucket(seconds: np.ndarray, n_buckets: int) -> np.ndarray:
    """0 = none (first event); else 1 + floor(log2(1 + minutes)), capped at n_buckets - 1."""
    out = np.zeros(len(seconds), dtype=np.int64)
    ok = seconds >= 0
    b = 1 + np.floor(np.log2(1.0 + seconds[ok] / 60.0)).astype(np.int64)
    out[ok] = np.minimum(b, n_buckets - 1)
    return out


@dataclass
class Examples:
    user_id: np.ndarray  # (n,)
    cutoff: np.ndarray  # (n,) datetime64[us]
    offsets: np.ndarray  # (n + 1,) into the per-event arrays
    tokens: dict[str, np.ndarray]  # per event: int64 ids, float32 "numeric"
    event_time: np.ndarray  # per event, datetime64[us]; kept so tests can prove no leakage
    purchase: np.ndarray | None = None  # (n,) float32
    churn: np.ndarray | None = None
    # (n, F) signed-log RFM features (behavior_model.baselines), or (n, 0) when unused.
    context: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    # (n, F) the raw RFM features (FEATURE_NAMES, float64): baselines and the drift reference.
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float64))
    text_table: np.ndarray = field(default_factory=lambda: np.zeros((1, 384), np.float32))
    # The item texts behind tokens["text"] (text -> row; row 0 = no text): what a language model
    # reads (behavior_model.lm). Shared with the builder, never copied.
    text_index: dict[str, int] = field(default_factory=dict)
    # Basket tokens (ModelConfig.token_unit = "basket"): the positions above are baskets
    # (``event_time`` = the basket's first event) and these are their events, per event "item",
    # "category" and "text" ids, the events of basket k at member_offsets[k]:member_offsets[k + 1].
    members: dict[str, np.ndarray] | None = None
    member_offsets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.user_id)

    @property
    def n_events(self) -> int:
        return int(self.offsets[-1])


def utc_timestamp(t) -> pd.Timestamp:
    """A cutoff as a UTC Timestamp; naive values are taken as UTC."""
    t = pd.Timestamp(t)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def text_index_only(texts, dim: int = 384) -> tuple[dict[str, int], np.ndarray]:
    """Every distinct text its row, vectors all zero: for a model that reads the words
    themselves (the pretrained LM) and not sentence vectors."""
    texts = sorted(set(texts))
    return {t: i + 1 for i, t in enumerate(texts)}, np.zeros((len(texts) + 1, dim), np.float32)


def make_text_table(events: pd.DataFrame, embedder) -> tuple[dict[str, int], np.ndarray]:
    """Row 0 is the zero vector (no text); one row per distinct item text."""
    index, table = text_index_only(
        events["item_text"].dropna().unique().tolist(), 384 if embedder is None else embedder.dim
    )
    if index and embedder is not None:
        table[1:] = embedder.embed(list(index))
    return index, table


def build_examples(
    events: pd.DataFrame,
    cutoff: datetime | pd.Timestamp,
    *,
    labels: LabelConfig,
    model: ModelConfig,
    vocab: Vocabulary,
    text_index: dict[str, int],
    text_table: np.ndarray,
    with_labels: bool = True,
) -> Examples:
    """Examples for every eligible user at ``cutoff`` (UTC)."""
    cutoff = utc_timestamp(cutoff)
    past = events[events["event_time"] < cutoff]
    last_seen = past.groupby("user_id")["event_time"].max()
    eligible = last_seen[last_seen >= cutoff - pd.Timedelta(days=labels.lookback_days)].index
    hist = past[past["user_id"].isin(eligible)].sort_values(["user_id", "event_time", "event_id"])
    hist = hist.groupby("user_id", sort=False).tail(model.max_events)

    sizes = hist.groupby("user_id", sort=False).size()
    users = sizes.index.to_numpy()
    offsets = np.concatenate([[0], np.cumsum(sizes.to_numpy())]).astype(np.int64)
    event_time = hist["event_time"].dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    naive_cutoff = cutoff.tz_localize(None).to_datetime64().astype("datetime64[us]")
    seq = sequence_inputs(
        {c: hist[c] for c in ("event_type", "item_id", "category", "item_text")},
        price=hist["price"].to_numpy(dtype=float, na_value=np.nan),
        quantity=hist["quantity"].to_numpy(dtype=float, na_value=np.nan),
        event_time=event_time,
        offsets=offsets,
        cutoffs=np.full(len(users), naive_cutoff),
        model=model,
        vocab=vocab,
        text_index=text_index,
    )
    raw = rfm_features(events, cutoff, users)
    if model.use_context:
        context = transform(raw).astype(np.float32)
    else:
        context = np.zeros((len(users), 0), np.float32)
    ex = Examples(
        user_id=users,
        context=context,
        features=raw.to_numpy(dtype=np.float64),
        cutoff=np.full(len(users), naive_cutoff),
        text_table=text_table,
        text_index=text_index,
        **seq,
    )
    if with_labels:
        ex.purchase, ex.churn = make_labels(events, users, cutoff, labels)
    return ex


def time_tokens(
    event_time: np.ndarray, offsets: np.ndarray, cutoffs: np.ndarray, time_buckets: int
) -> dict[str, np.ndarray]:
    """Per position: log-bucketed time since the previous position of the same user (the first
    has none) and age before the cutoff, UTC hour and weekday."""
    t_us = event_time.astype("datetime64[us]").astype(np.int64)
    lengths = np.diff(offsets)
    gap = np.empty(len(t_us), dtype=np.float64)
    gap[1:] = (t_us[1:] - t_us[:-1]) / 1e6
    gap[offsets[:-1][lengths > 0]] = -1.0
    cutoff_us = np.repeat(cutoffs.astype("datetime64[us]").astype(np.int64), lengths)
    days = np.floor_divide(t_us, 86_400_000_000)
    return {
        "gap": time_bucket(gap, time_buckets),
        "age": time_bucket((cutoff_us - t_us) / 1e6, time_buckets),
        "hour": (np.floor_divide(t_us, 3_600_000_000) % 24).astype(np.int64),
        "weekday": ((days + 3) % 7).astype(np.int64),  # 1970-01-01 was a Thursday; Monday = 0
    }


def sequence_inputs(
    text_columns: dict[str, pd.Series],
    *,
    price: np.ndarray,
    quantity: np.ndarray,
    event_time: np.ndarray,
    offsets: np.ndarray,
    cutoffs: np.ndarray,
    model: ModelConfig,
    vocab: Vocabulary,
    text_index: dict[str, int],
) -> dict[str, object]:
    """The ``Examples`` fields of the sequence (tokens, event_time, offsets and, for basket
    tokens, members and member_offsets) from the events of consecutive users (``offsets``),
    oldest first per user; ``event_time`` and ``cutoffs`` (one per user) naive UTC
    datetime64[us].

    One definition for both builders (pandas ``build_examples`` and ``examples_from_arrow`` over
    the Spark shards): the time since the previous event is measured within the events read (the
    first one has none), hours and weekdays are UTC.
    """
    tokens = time_tokens(event_time, offsets, cutoffs, model.time_buckets) | {
        "event_type": pd.Series(text_columns["event_type"], copy=False)
        .map(EVENT_TYPE_IDS)
        .fillna(0)
        .astype(np.int64)
        .to_numpy(),
        "item": vocab.item_index(pd.Series(text_columns["item_id"], copy=False)),
        "category": vocab.category_index(pd.Series(text_columns["category"], copy=False)),
        "text": pd.Series(text_columns["item_text"], copy=False)
        .map(text_index)
        .fillna(0)
        .astype(np.int64)
        .to_numpy(),
        "numeric": np.stack(
            [
                np.log1p(np.clip(np.nan_to_num(price, nan=0.0), 0, None)),
                np.log1p(np.clip(np.nan_to_num(quantity, nan=0.0), 0, None)),
            ],
            axis=1,
        ).astype(np.float32),
    }
    if not model.reads_baskets:
        return {"tokens": tokens, "event_time": event_time, "offsets": offsets}
    return baskets(
        tokens, price=price, quantity=quantity, event_time=event_time, offsets=offsets,
        cutoffs=cutoffs, model=model,
    )  # fmt: skip


# A basket's type is the furthest its events went: a visit with a purchase is a purchase.
BASKET_TYPE_ORDER = ("view", "wishlist", "cart", "return", "purchase")


def baskets(
    tokens: dict[str, np.ndarray],
    *,
    price: np.ndarray,
    quantity: np.ndarray,
    event_time: np.ndarray,
    offsets: np.ndarray,
    cutoffs: np.ndarray,
    model: ModelConfig,
) -> dict[str, object]:
    """Per-event tokens collapsed into basket tokens (``ModelConfig.token_unit = "basket"``).

    A user's event starts a new basket when it comes more than ``basket_gap_minutes`` after the
    previous one (events are time-ordered per user). A basket's time is its first event's (gap,
    age, hour, weekday as for events), its type the furthest in ``BASKET_TYPE_ORDER``, its
    numbers log1p of spend (sum of price x quantity over lines with both positive), of its line
    count and of its total positive quantity. Its events' item, category and text ids stay as
    ``members``: the model pools their embeddings, and pre-training predicts every one of them.
    """
    n = len(event_time)
    lengths = np.diff(offsets)
    user_of = np.repeat(np.arange(len(lengths)), lengths)
    t_us = event_time.astype("datetime64[us]").astype(np.int64)
    new = np.ones(n, dtype=bool)
    new[1:] = (user_of[1:] != user_of[:-1]) | (
        t_us[1:] - t_us[:-1] > model.basket_gap_minutes * 60e6
    )
    starts = np.flatnonzero(new)
    member_offsets = np.append(starts, n).astype(np.int64)
    per_user = np.bincount(user_of[starts], minlength=len(lengths))
    basket_offsets = np.concatenate([[0], np.cumsum(per_user)]).astype(np.int64)
    basket_time = event_time[starts]

    rank_of_type = np.zeros(len(EVENT_TYPE_IDS) + 1, dtype=np.int64)  # padding ranks lowest
    for r, t in enumerate(BASKET_TYPE_ORDER, start=1):
        rank_of_type[EVENT_TYPE_IDS[t]] = r
    type_of_rank = np.argsort(rank_of_type)  # rank -> type id (ranks are a permutation)
    q = np.clip(np.nan_to_num(quantity, nan=0.0), 0, None)
    p = np.clip(np.nan_to_num(price, nan=0.0), 0, None)

    def per_basket(values: np.ndarray, ufunc=np.add) -> np.ndarray:
        return ufunc.reduceat(values, starts) if n else values[:0]

    numeric = np.stack(
        [
            np.log1p(per_basket(p * q)),
            np.log1p(np.diff(member_offsets).astype(np.float64)),
            np.log1p(per_basket(q)),
        ],
        axis=1,
    ).astype(np.float32)
    return {
        "tokens": time_tokens(basket_time, basket_offsets, cutoffs, model.time_buckets)
        | {
            "event_type": type_of_rank[
                per_basket(rank_of_type[tokens["event_type"]], np.maximum)
            ].astype(np.int64),
            "numeric": numeric,
        },
        "event_time": basket_time,
        "offsets": basket_offsets,
        "members": {k: tokens[k] for k in ("item", "category", "text")},
        "member_offsets": member_offsets,
    }


def examples_from_arrow(
    table: pa.Table,
    *,
    model: ModelConfig,
    vocab: Vocabulary,
    text_index: dict[str, int],
    text_table: np.ndarray,
    with_labels: bool,
) -> Examples:
    """Examples from rows of the lake's example shards (``jobs.examples``), in the rows' order.

    A shard keeps up to its own N events per user; a model that reads fewer takes the latest.
    """
    n = table.num_rows
    needed = ["user_id", "cutoff", "history", *FEATURE_NAMES]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise ValueError(
            f"the example shard has no column(s) {missing}: it was written by another version "
            "of jobs.examples; rebuild it (rerun the scoring or training task)"
        )
    if model.use_context and model.context_dim not in (0, len(FEATURE_NAMES)):
        raise ValueError(
            f"the model reads {model.context_dim} context features, this code computes "
            f"{len(FEATURE_NAMES)} (pipeline.contracts.FEATURE_NAMES): it was trained with "
            "another feature set; retrain it"
        )
    lists = table.column("history").combine_chunks()
    if isinstance(lists, pa.ChunkedArray):  # an empty table
        lists = pa.array([], type=table.schema.field("history").type)
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(lists)
    keep_n = np.minimum(lengths, model.max_events).astype(np.int64)
    if (keep_n < lengths).any():
        ends = np.cumsum(lengths)
        rows = np.concatenate(
            [np.arange(e - k, e) for e, k in zip(ends, keep_n, strict=True)] or [np.zeros(0, int)]
        )
        flat = flat.take(pa.array(rows, type=pa.int64()))
    offsets = np.concatenate([[0], np.cumsum(keep_n)]).astype(np.int64)

    def column(name: str) -> pa.Array:
        return flat.field(name)

    event_time = column("event_time").cast(pa.int64()).to_numpy().view("datetime64[us]")
    cutoffs = (
        table.column("cutoff").combine_chunks().cast(pa.int64()).to_numpy().view("datetime64[us]")
    )
    seq = sequence_inputs(
        {c: column(c).to_pandas() for c in ("event_type", "item_id", "category", "item_text")},
        price=column("price").to_numpy(zero_copy_only=False).astype(float),
        quantity=column("quantity").cast(pa.float64()).to_numpy(zero_copy_only=False),
        event_time=event_time,
        offsets=offsets,
        cutoffs=cutoffs,
        model=model,
        vocab=vocab,
        text_index=text_index,
    )
    raw = np.stack(
        [table.column(f).to_numpy().astype(float) for f in FEATURE_NAMES], axis=1
    ).reshape(n, len(FEATURE_NAMES))
    if model.use_context:
        context = transform(pd.DataFrame(raw, columns=list(FEATURE_NAMES))).astype(np.float32)
    else:
        context = np.zeros((n, 0), np.float32)
    ex = Examples(
        user_id=np.asarray(table.column("user_id").to_pylist(), dtype=object),
        cutoff=cutoffs,
        context=context,
        features=raw,
        text_table=text_table,
        text_index=text_index,
        **seq,
    )
    if with_labels:
        if table.column("purchase").null_count or table.column("churn").null_count:
            raise ValueError(
                "the example shard has no labels (built for scoring, before the outcome was "
                "known): build the training cutoffs' shards with both horizons"
            )
        ex.purchase = table.column("purchase").to_numpy().astype(np.float32)
        ex.churn = table.column("churn").to_numpy().astype(np.float32)
    return ex


def make_labels(
    events: pd.DataFrame, users: np.ndarray, cutoff: pd.Timestamp, labels: LabelConfig
) -> tuple[np.ndarray, np.ndarray]:
    t = events["event_time"]
    p_end = cutoff + pd.Timedelta(days=labels.purchase_horizon_days)
    c_end = cutoff + pd.Timedelta(days=labels.churn_horizon_days)
    buyers = set(
        events.loc[(t >= cutoff) & (t < p_end) & (events["event_type"] == "purchase"), "user_id"]
    )
    active = set(events.loc[(t >= cutoff) & (t < c_end), "user_id"])
    purchase = np.array([u in buyers for u in users], dtype=np.float32)
    churn = np.array([u not in active for u in users], dtype=np.float32)
    return purchase, churn


def eligible_users(events: pd.DataFrame, cutoff: pd.Timestamp, labels: LabelConfig) -> np.ndarray:
    """Users with an event in [cutoff - lookback, cutoff), sorted (the order examples use)."""
    past = events[events["event_time"] < cutoff]
    last_seen = past.groupby("user_id")["event_time"].max()
    return np.sort(
        last_seen[last_seen >= cutoff - pd.Timedelta(days=labels.lookback_days)].index.to_numpy()
    )


def check_share(share: float) -> float:
    """``share`` if it is a share of users that ``held_out`` can hold out: in (0, 1)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"the held-out share of users must lie in (0, 1), got {share}")
    return share


def held_out(user_ids: np.ndarray, share: float) -> np.ndarray:
    """Which users a validation holds out of training: about ``share`` of them, by a salted
    blake2b of the id (the same users in every run and process, independent of the hybrid's
    CRC-32 folds). Validating on users the model never trained on keeps close training cutoffs,
    whose label windows overlap the validation cutoff's, from leaking into the validation."""
    limit = check_share(share) * 2.0**64
    return np.fromiter(
        (_stable_hash(f"validation/{u}") < limit for u in user_ids), dtype=bool, count=len(user_ids)
    )


def user_fold(user_ids: np.ndarray, folds: int) -> np.ndarray:
    """Each user's fold in [0, folds) for cross-fitting (``behavior_model.hybrid``): CRC-32 of
    the id, stable across runs and processes (Python's ``hash`` of a string is salted per
    process)."""
    return np.fromiter(
        (zlib.crc32(str(u).encode()) % folds for u in user_ids), dtype=np.int64, count=len(user_ids)
    )


def concat_examples(parts: list[Examples]) -> Examples:
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError("no examples: no eligible users at any cutoff")
    shifts = np.cumsum([0] + [p.n_events for p in parts[:-1]])
    members = member_offsets = None
    if parts[0].members is not None:
        members = {k: np.concatenate([p.members[k] for p in parts]) for k in parts[0].members}
        member_shifts = np.cumsum([0] + [p.member_offsets[-1] for p in parts[:-1]])
        member_offsets = np.concatenate(
            [[0]] + [p.member_offsets[1:] + s for p, s in zip(parts, member_shifts, strict=True)]
        )
    return Examples(
        user_id=np.concatenate([p.user_id for p in parts]),
        cutoff=np.concatenate([p.cutoff for p in parts]),
        offsets=np.concatenate(
            [[0]] + [p.offsets[1:] + s for p, s in zip(parts, shifts, strict=True)]
        ),
        tokens={k: np.concatenate([p.tokens[k] for p in parts]) for k in parts[0].tokens},
        event_time=np.concatenate([p.event_time for p in parts]),
        purchase=None if parts[0].purchase is None else np.concatenate([p.purchase for p in parts]),
        churn=None if parts[0].churn is None else np.concatenate([p.churn for p in parts]),
        context=np.concatenate([p.context for p in parts]),
        features=np.concatenate([p.features for p in parts]),
        text_table=parts[0].text_table,
        text_index=parts[0].text_index,
        members=members,
        member_offsets=member_offsets,
    )


def collate(ex: Examples, idx: list[int]) -> dict[str, torch.Tensor]:
    """Pad the chosen examples to the longest among them. Right padding; mask marks real events."""
    lengths = ex.offsets[np.asarray(idx) + 1] - ex.offsets[np.asarray(idx)]
    T = int(lengths.max())
    B = len(idx)
    out: dict[str, torch.Tensor] = {}
    mask = np.zeros((B, T), dtype=np.int64)
    rows = np.concatenate([np.arange(ex.offsets[i], ex.offsets[i + 1]) for i in idx])
    b_index = np.repeat(np.arange(B), lengths)
    t_index = np.concatenate([np.arange(n) for n in lengths])
    mask[b_index, t_index] = 1
    for k, v in ex.tokens.items():
        padded = np.zeros((B, T, *v.shape[1:]), dtype=v.dtype)
        padded[b_index, t_index] = v[rows]
        out[k] = torch.from_numpy(padded)
    if ex.members is None:
        out["text_vectors"] = torch.from_numpy(ex.text_table[out["text"].numpy()])  # (B, T, D)
    else:
        out |= collate_members(ex, rows, b_index * T + t_index, B * T)
        out["text_vectors"] = out["text_vectors"].view(B, T, -1)
    out["attention_mask"] = torch.from_numpy(mask)
    out["context"] = torch.from_numpy(ex.context[np.asarray(idx)])  # (B, F)
    out["lengths"] = torch.from_numpy(lengths.astype(np.int64))
    if ex.purchase is not None:
        out["targets"] = torch.from_numpy(np.stack([ex.churn[idx], ex.purchase[idx]], axis=1))
    return out


def collate_members(
    ex: Examples, rows: np.ndarray, slots: np.ndarray, n_slots: int
) -> dict[str, torch.Tensor]:
    """Basket tokens' events, flat: ``member_<id>`` and ``member_slot`` (the basket's position in
    the padded (B * T) batch), ``member_weight`` (1 / the basket's size: pooling is a mean) and
    ``text_vectors`` (n_slots, D), each basket's mean item-text vector (a linear projection of
    the mean is the mean of the projections)."""
    lo, hi = ex.member_offsets[rows], ex.member_offsets[rows + 1]
    sizes = hi - lo
    member_rows = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
    slot = np.repeat(slots, sizes)
    weight = np.repeat(1.0 / np.maximum(sizes, 1), sizes).astype(np.float32)
    text = np.zeros((n_slots, ex.text_table.shape[1]), dtype=np.float32)
    if len(member_rows):  # a basket's events are contiguous, and every basket has one
        vectors = ex.text_table[ex.members["text"][member_rows]] * weight[:, None]
        text[slots] = np.add.reduceat(vectors, np.cumsum(sizes) - sizes, axis=0)
    return {f"member_{k}": torch.from_numpy(v[member_rows]) for k, v in ex.members.items()} | {
        "member_slot": torch.from_numpy(slot.astype(np.int64)),
        "member_weight": torch.from_numpy(weight),
        "text_vectors": torch.from_numpy(text),
    }
