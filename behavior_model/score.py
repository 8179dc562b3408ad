"""Nightly scoring: the champion model scores every eligible user as of the run date.

    python -m behavior_model.score --source sample_clickstream --score-date 2026-03-01

Inputs are the events strictly before the midnight after ``score_date`` (UTC). The rows for that
score_date in ``user_propensity_scores`` are replaced in one transaction.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

import pandas as pd

from behavior_model.registry import load_champion
from jobs.lake import read_partitions, without_bots
from jobs.settings import get_settings
from jobs.source_mapping import load_mapping
from jobs.warehouse import USER_PROPENSITY_SCORES, Warehouse


def score_users(source: str, score_date: date, *, warehouse_url: str | None = None) -> int:
    """Score and write; returns the number of rows written for ``score_date``."""
    settings = get_settings()
    mapping = load_mapping(source)
    predictor, version = load_champion(settings)
    # Bots stay in the lake but are left out of training and scoring.
    events = without_bots(
        read_partitions(settings.source_lake(mapping.name) / "sessionized_events", end=score_date)
    )
    cutoff = pd.Timestamp(score_date, tz="UTC") + pd.Timedelta(days=1)
    scores = predictor.predict_users(events, cutoff)
    scored_at = datetime.now(UTC).replace(tzinfo=None)  # audit stamp only, decides nothing
    rows = [
        (score_date, r.user_id, float(r.churn_probability), float(r.purchase_probability),
         settings.registered_model_name, version, scored_at)
        for r in scores.itertuples(index=False)
    ]  # fmt: skip
    return Warehouse(warehouse_url).replace(
        USER_PROPENSITY_SCORES, {"score_date": score_date}, rows
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True)
    p.add_argument("--score-date", type=date.fromisoformat, required=True)
    a = p.parse_args(argv)
    n = score_users(a.source, a.score_date)
    print(f"wrote {n} rows for {a.score_date} to {USER_PROPENSITY_SCORES.name}")


if __name__ == "__main__":
    main()
