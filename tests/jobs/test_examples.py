"""The Spark example builder equals the pandas reference, value for value."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from behavior_model.config import LabelConfig, ModelConfig
from behavior_model.data import build_examples as pandas_examples
from behavior_model.data import build_vocabulary, examples_from_arrow, make_text_table
from behavior_model.features import rfm_features as pandas_rfm
from behavior_model.profiles import user_profiles as pandas_profiles
from jobs import examples as spark_examples
from jobs.spark import event_schema
from pipeline.contracts import EVENT_COLUMNS, FEATURE_NAMES, PROFILE_COLUMNS
from pipeline.sample_data import SampleConfig, canonical_events

CUTOFF = datetime(2026, 1, 25, tzinfo=UTC)
LABELS = LabelConfig(purchase_horizon_days=7, churn_horizon_days=14, lookback_days=10)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    """The sample shop plus the awkward users: one event only, a long history, a basket of three
    events at one timestamp, no category / price / quantity, an event exactly at the cutoff."""
    sample = canonical_events(SampleConfig(days=40, users=150, seed=3))
    t = pd.Timestamp("2026-01-24 10:00", tz="UTC")
    extra = [
        ("x1", "single", t, "view", "I1", "toys", "RED KITE", 2.0, 1),
        *[
            (f"x2-{i}", "long", t - pd.Timedelta(hours=i), "view", f"I{i % 7}", "toys", None,
             1.0, 1)
            for i in range(80)
        ],
        *[
            (f"x3-{i}", "basket", t, "purchase", f"B{i}", "kitchen", "MUG", 3.5, 2)
            for i in range(3)
        ],
        ("x4", "nulls", t, "purchase", "N1", None, None, None, None),
        ("x5", "nulls", pd.Timestamp(CUTOFF), "purchase", "N1", None, None, 9.0, 1),
        ("x6", "returner", t, "return", "R1", "toys", "RED KITE", 2.0, 1),
    ]  # fmt: skip
    extra = pd.DataFrame(
        extra,
        columns=["event_id", "user_id", "event_time", "event_type", "item_id", "category",
                 "item_text", "price", "quantity"],
    ).assign(session_id=None)  # fmt: skip
    out = pd.concat([sample, extra], ignore_index=True)
    out["quantity"] = out["quantity"].astype("Int64")
    return out[list(EVENT_COLUMNS)]


@pytest.fixture(scope="module")
def spark_events(spark, events):
    return spark.createDataFrame(events.astype({"quantity": "float64"}), event_schema())


def _arrow(df) -> pa.Table:
    table = df.toArrow()
    return table.sort_by("user_id")


@pytest.mark.parametrize("token_unit", ["event", "basket"])
def test_examples_equal_the_pandas_reference(spark_events, events, token_unit):
    model = ModelConfig(max_events=8, token_unit=token_unit)
    vocab = build_vocabulary(events, replace(model, item_vocab_size=20))
    text_index, text_table = make_text_table(events[events["event_time"] < CUTOFF], None)
    expected = pandas_examples(
        events, CUTOFF, labels=LABELS, model=model, vocab=vocab,
        text_index=text_index, text_table=text_table,
    )  # fmt: skip
    shard = spark_examples.build_examples(
        spark_events, CUTOFF, lookback_days=LABELS.lookback_days, max_events=model.max_events,
        purchase_days=LABELS.purchase_horizon_days, churn_days=LABELS.churn_horizon_days,
    )  # fmt: skip
    table = _arrow(shard)
    got = examples_from_arrow(
        table, model=model, vocab=vocab, text_index=text_index, text_table=text_table,
        with_labels=True,
    )  # fmt: skip
    assert len(expected) > 100
    assert {"single", "long", "basket", "nulls", "returner"} <= set(got.user_id)
    np.testing.assert_array_equal(got.user_id, expected.user_id)
    np.testing.assert_array_equal(got.offsets, expected.offsets)
    np.testing.assert_array_equal(got.event_time, expected.event_time)
    np.testing.assert_array_equal(got.cutoff, expected.cutoff)
    assert set(got.tokens) == set(expected.tokens)
    for name, values in expected.tokens.items():
        np.testing.assert_array_equal(got.tokens[name], values, err_msg=name)
    if token_unit == "basket":
        np.testing.assert_array_equal(got.member_offsets, expected.member_offsets)
        for name, values in expected.members.items():
            np.testing.assert_array_equal(got.members[name], values, err_msg=name)
        assert len(got.member_offsets) - 1 < got.member_offsets[-1]  # some baskets hold several
    else:
        assert got.members is None
    np.testing.assert_allclose(got.context, expected.context, rtol=1e-6)
    np.testing.assert_array_equal(got.purchase, expected.purchase)
    np.testing.assert_array_equal(got.churn, expected.churn)
    # The long history is cut to the last 8 events, and its count says how long it was.
    long = table.filter(pa.compute.equal(table["user_id"], "long"))
    assert long["n_events"].to_pylist() == [80]
    # A model reading fewer events than the shard holds takes the latest ones.
    short = examples_from_arrow(
        table, model=replace(model, max_events=3), vocab=vocab, text_index=text_index,
        text_table=text_table, with_labels=False,
    )  # fmt: skip
    i = list(short.user_id).index("long")
    j = list(got.user_id).index("long")
    np.testing.assert_array_equal(
        short.event_time[short.offsets[i] : short.offsets[i + 1]],
        got.event_time[got.offsets[j + 1] - 3 : got.offsets[j + 1]],
    )


def test_rfm_features_and_profiles_equal_the_pandas_reference(spark_events, events):
    features = spark_examples.rfm_features(spark_events, CUTOFF).toPandas().set_index("user_id")
    users = np.sort(events.loc[events["event_time"] < CUTOFF, "user_id"].unique())
    expected = pandas_rfm(events, pd.Timestamp(CUTOFF), users)
    got = features.loc[users, list(FEATURE_NAMES)]
    pd.testing.assert_frame_equal(got, expected, check_names=False, rtol=1e-9)
    assert expected.loc["basket", "baskets"] == 1 and expected.loc["basket", "events"] == 3

    profiles = spark_examples.user_profiles(spark_events, CUTOFF).toPandas().set_index("user_id")
    want = pandas_profiles(events, pd.Timestamp(CUTOFF), users)
    got = profiles.loc[users, list(PROFILE_COLUMNS)].astype(object)
    got = got.where(got.notna(), None)
    for column in PROFILE_COLUMNS:
        a, b = got[column].to_numpy(), want[column].to_numpy()
        assert [x is None for x in a] == [x is None for x in b], column
        known = np.array([x is not None for x in b])
        if column == "favourite_categories":
            assert list(a[known]) == list(b[known])
        else:
            np.testing.assert_allclose(
                a[known].astype(float), b[known].astype(float), rtol=1e-9, err_msg=column
            )
    assert want.loc["nulls", "favourite_categories"] is None
    assert want.loc["returner", "return_share"] == 1.0


def test_a_training_runs_cutoffs_in_one_plan_equal_the_pandas_reference_at_each(
    spark_events, events
):
    """Every cutoff of a training run is built in one pass over the events (``at_cutoffs``): an
    event counts for each cutoff it precedes, and for the labels of each cutoff whose horizon it
    falls in, never for another cutoff's features or labels."""
    labelled = [datetime(2026, 1, d, tzinfo=UTC) for d in (11, 18, 25)]
    unlabelled = [datetime(2026, 2, 9, tzinfo=UTC)]
    rows = spark_examples.training_examples(
        spark_events, labelled, unlabelled, lookback_days=LABELS.lookback_days, max_events=8,
        purchase_days=LABELS.purchase_horizon_days, churn_days=LABELS.churn_horizon_days,
    ).toPandas()  # fmt: skip
    model = ModelConfig(max_events=8)
    vocab = build_vocabulary(events, model)
    text_index, text_table = make_text_table(events, None)
    for cutoff in labelled:
        got = rows[rows["cutoff_date"] == cutoff.date()].sort_values("user_id")
        expected = pandas_examples(
            events, pd.Timestamp(cutoff), labels=LABELS, model=model, vocab=vocab,
            text_index=text_index, text_table=text_table,
        )  # fmt: skip
        assert len(got) > 50, cutoff
        np.testing.assert_array_equal(got["user_id"], expected.user_id)
        np.testing.assert_array_equal(got["purchase"], expected.purchase)
        np.testing.assert_array_equal(got["churn"], expected.churn)
        features = pandas_rfm(events, pd.Timestamp(cutoff), expected.user_id)
        np.testing.assert_allclose(got[list(FEATURE_NAMES)], features, rtol=1e-9)
        assert (got["cutoff"] == pd.Timestamp(cutoff).tz_localize(None)).all()  # UTC, naive
        assert got["n_events"].tolist() == [
            int(((events["user_id"] == u) & (events["event_time"] < cutoff)).sum())
            for u in got["user_id"]
        ]
    # Both labels vary across the cutoffs (the check above could not pass on constants).
    labelled_rows = rows[rows["cutoff_date"] != unlabelled[0].date()]
    assert labelled_rows["churn"].nunique() == labelled_rows["purchase"].nunique() == 2
    latest = rows[rows["cutoff_date"] == unlabelled[0].date()]
    assert len(latest) > 0 and latest["purchase"].isna().all() and latest["churn"].isna().all()
    assert set(rows["cutoff_date"]) == {c.date() for c in (*labelled, *unlabelled)}


def test_scoring_shards_have_no_labels_and_training_refuses_them(spark_events, events):
    shard = spark_examples.build_examples(spark_events, CUTOFF, lookback_days=10, max_events=8)
    table = _arrow(shard)
    assert table["purchase"].null_count == table.num_rows > 0
    vocab = build_vocabulary(events, ModelConfig())
    with pytest.raises(ValueError, match="no labels"):
        examples_from_arrow(
            table, model=ModelConfig(), vocab=vocab, text_index={}, text_table=np.zeros((1, 4)),
            with_labels=True,
        )  # fmt: skip
    # A champion trained on another feature set, a shard from another version: named, not a
    # shape error deep in the model.
    with pytest.raises(ValueError, match="reads 5 context features.*another feature set"):
        examples_from_arrow(
            table, model=ModelConfig(context_dim=5), vocab=vocab, text_index={},
            text_table=np.zeros((1, 4)), with_labels=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"no column\(s\) \['mean_gap_days'\].*rebuild"):
        examples_from_arrow(
            table.drop_columns(["mean_gap_days"]), model=ModelConfig(), vocab=vocab,
            text_index={}, text_table=np.zeros((1, 4)), with_labels=False,
        )  # fmt: skip


def test_shards_are_written_per_cutoff_and_replaced_on_rerun(spark_events, tmp_path):
    table = tmp_path / "examples"
    for cutoff in (CUTOFF, datetime(2026, 1, 26, tzinfo=UTC)):
        shard = spark_examples.build_examples(spark_events, cutoff, lookback_days=10, max_events=8)
        spark_examples.write_examples(shard, table, [cutoff.date()])
    first = ds.dataset(table, format="parquet", partitioning="hive").to_table()
    again = spark_examples.build_examples(spark_events, CUTOFF, lookback_days=10, max_events=8)
    spark_examples.write_examples(again, table, [CUTOFF.date()])
    second = ds.dataset(table, format="parquet", partitioning="hive").to_table()
    assert second.num_rows == first.num_rows  # replaced, not appended
    days = sorted({str(d) for d in second["cutoff_date"].to_pylist()})
    assert days == ["2026-01-25", "2026-01-26"]
    assert spark_examples.cutoff_of(date(2026, 1, 24)) == CUTOFF
