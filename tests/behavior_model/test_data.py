"""Examples: no input at or after the cutoff, labels as defined, stable vocabulary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from behavior_model.config import LabelConfig, ModelConfig
from behavior_model.data import (
    EVENT_TYPE_IDS,
    build_examples,
    build_vocabulary,
    collate,
    make_text_table,
)
from tests.behavior_model.conftest import events_frame

LABELS = LabelConfig(purchase_horizon_days=7, churn_horizon_days=14, lookback_days=28)
MODEL = ModelConfig(max_events=8)


def _examples(events, cutoff, model=MODEL):
    vocab = build_vocabulary(events, model)
    text_index, table = make_text_table(events, None)
    return build_examples(
        events,
        cutoff,
        labels=LABELS,
        model=model,
        vocab=vocab,
        text_index=text_index,
        text_table=table,
    )


def test_no_example_contains_an_event_at_or_after_its_cutoff(sample_events):
    for cutoff in pd.date_range("2026-01-15", "2026-02-20", freq="7D", tz="UTC"):
        ex = _examples(sample_events, cutoff, ModelConfig(max_events=64))
        assert len(ex) > 100
        owner = np.repeat(np.arange(len(ex)), np.diff(ex.offsets))
        assert (ex.event_time < ex.cutoff[owner]).all()
        # The last input of each user is that user's last event before the cutoff, not after it.
        before = sample_events[sample_events["event_time"] < cutoff]
        last = before.groupby("user_id")["event_time"].max().dt.tz_localize(None)
        got_last = pd.Series(ex.event_time[ex.offsets[1:] - 1], index=ex.user_id)
        assert (got_last == last.reindex(ex.user_id).to_numpy()).all()


def test_labels_and_eligibility():
    cut = "2026-02-01"
    events = events_frame(
        [
            ("buyer", "2026-01-31 10:00", "view"),
            ("buyer", "2026-02-03 10:00", "purchase"),  # within 7 days: purchase=1, active
            ("late_buyer", "2026-01-30 10:00", "view"),
            ("late_buyer", "2026-02-10 10:00", "purchase"),  # day 9: no purchase label, not churned
            ("churner", "2026-01-20 10:00", "cart"),  # nothing after the cutoff: churn=1
            ("at_cutoff", "2026-01-25 10:00", "view"),
            ("at_cutoff", "2026-02-01 00:00", "purchase"),  # at T: a label, never an input
            ("returner", "2026-01-25 10:00", "purchase"),
            ("returner", "2026-02-12 10:00", "return"),  # returns count as activity
            ("dormant", "2025-12-01 10:00", "view"),  # outside the 28-day lookback: not eligible
            ("dormant", "2026-02-02 10:00", "purchase"),
        ]
    )
    ex = _examples(events, cut)
    got = {u: (int(p), int(c)) for u, p, c in zip(ex.user_id, ex.purchase, ex.churn, strict=True)}
    assert got == {
        "buyer": (1, 0),
        "late_buyer": (0, 0),
        "churner": (0, 1),
        "at_cutoff": (1, 0),
        "returner": (0, 0),
    }
    i = list(ex.user_id).index("at_cutoff")
    assert ex.offsets[i + 1] - ex.offsets[i] == 1  # only the event before T


def test_only_the_last_n_events_are_kept_and_batches_pad_right():
    rows = [("u", f"2026-01-{d:02d} 10:00", "view") for d in range(1, 21)] + [
        ("v", "2026-01-20 10:00", "cart")
    ]
    ex = _examples(events_frame(rows), "2026-01-25")
    assert list(np.diff(ex.offsets)) == [8, 1]
    batch = collate(ex, [0, 1])
    assert batch["attention_mask"].tolist() == [[1] * 8, [1] + [0] * 7]
    assert batch["lengths"].tolist() == [8, 1]
    assert batch["event_type"][1, 0].item() == 2 and batch["event_type"][1, 1:].sum().item() == 0


def test_unknown_items_hash_to_stable_buckets():
    events = events_frame([("u", "2026-01-01", "view", "I1"), ("u", "2026-01-02", "view", "I2")])
    vocab = build_vocabulary(events, ModelConfig(item_vocab_size=1, item_hash_buckets=16))
    ids = vocab.item_index(pd.Series(["I1", "I2", "NEW", "NEW"]))
    assert ids[0] == 1 and 2 <= ids[1] < 18 and ids[2] == ids[3] and 2 <= ids[2] < 18


def _basket_rows():
    """Two invoices of u (3 lines at 10:00, then 1 line on the 3rd) and a view of v."""
    events = events_frame(
        [
            ("u", "2026-01-02 10:00", "purchase", "A"),
            ("u", "2026-01-02 10:00", "purchase", "B"),
            ("u", "2026-01-02 10:00", "view", "C"),
            ("u", "2026-01-03 09:00", "cart", "A"),
            ("u", "2026-01-03 09:20", "view", "B"),  # 20 minutes later: same session at gap 30
            ("v", "2026-01-04 12:00", "view", "C"),
        ]
    )
    events["price"] = [2.0, 3.0, np.nan, 5.0, 1.0, 1.0]
    events["quantity"] = [1, 4, 1, 2, 1, 1]
    return events


def test_basket_tokens_group_a_users_events_by_timestamp_or_gap():
    events = _basket_rows()
    ex = _examples(events, "2026-01-05", ModelConfig(max_events=8, token_unit="basket"))
    assert list(ex.user_id) == ["u", "v"]
    # u: {A, B, C} at 10:00, {A} at 09:00, {B} at 09:20; v: {C}.
    assert list(np.diff(ex.offsets)) == [3, 1]
    assert list(np.diff(ex.member_offsets)) == [3, 1, 1, 1]
    types = {v: k for k, v in EVENT_TYPE_IDS.items()}
    assert [types[t] for t in ex.tokens["event_type"]] == ["purchase", "cart", "view", "view"]
    spend, lines, quantity = np.expm1(ex.tokens["numeric"].astype(np.float64)).T
    np.testing.assert_allclose(spend, [2 + 12, 10, 1, 1], rtol=1e-6)  # no price: no spend
    np.testing.assert_allclose(lines, [3, 1, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(quantity, [6, 2, 1, 1], rtol=1e-6)
    assert ex.event_time[0] == np.datetime64("2026-01-02T10:00")
    # The member ids are the events' own, in order.
    vocab = build_vocabulary(events, MODEL)
    assert list(ex.members["item"]) == list(vocab.item_index(pd.Series(list("ABCABC"))))

    session = _examples(
        events, "2026-01-05", ModelConfig(token_unit="basket", basket_gap_minutes=30)
    )
    assert list(np.diff(session.offsets)) == [2, 1]
    assert list(np.diff(session.member_offsets)) == [3, 2, 1]
    # The gap between u's two baskets (23 h) is bucketed as for events; the first has none.
    assert session.tokens["gap"][0] == 0 and session.tokens["gap"][1] == 1 + int(
        np.log2(1 + 23 * 60)
    )


def test_basket_batches_pool_member_text_and_keep_every_member():
    events = _basket_rows()
    events["item_text"] = ["RED KITE", "BLUE KITE", "RED KITE", "MUG", "MUG", "MUG"]
    model = ModelConfig(max_events=8, token_unit="basket")
    vocab = build_vocabulary(events, model)
    text_index = {"BLUE KITE": 1, "MUG": 2, "RED KITE": 3}
    table = np.arange(8, dtype=np.float32).reshape(4, 2)  # row r = [2r, 2r + 1]
    ex = build_examples(events, "2026-01-05", labels=LABELS, model=model, vocab=vocab,
                        text_index=text_index, text_table=table)  # fmt: skip
    batch = collate(ex, [1, 0])  # v first: its one basket, then u's three
    B, T = batch["attention_mask"].shape
    assert (B, T) == (2, 3) and batch["attention_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    # u's first basket (slot 1 * T + 0) pools RED, BLUE, RED: rows 3, 1, 3.
    np.testing.assert_allclose(
        batch["text_vectors"][1, 0], (table[3] * 2 + table[1]) / 3, rtol=1e-6
    )
    np.testing.assert_allclose(batch["text_vectors"][0, 0], table[2])  # v: MUG
    assert batch["text_vectors"][0, 1:].abs().sum() == 0  # padding
    assert batch["member_slot"].tolist() == [0, 3, 3, 3, 4, 5]
    np.testing.assert_allclose(batch["member_weight"], [1, 1 / 3, 1 / 3, 1 / 3, 1, 1], rtol=1e-6)
    assert batch["member_item"].tolist() == vocab.item_index(pd.Series(list("CABCAB"))).tolist()
