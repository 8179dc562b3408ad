"""Nightly scoring: the source's champion model scores every eligible user as of the run date.

    python -m behavior_model.score --source sample_clickstream --score-date 2026-03-01

Inputs are the events strictly before the midnight after ``score_date`` (UTC). The rows for that
(score_date) in ``user_propensity_scores`` are replaced in one transaction. The champion alias is
resolved to a version once; that exact version scores and is stamped on every row.

A date without eligible users (no data, an empty day, a missing partition) fails with a message
naming the cause and leaves that date's existing rows as they are; never replaced with nothing.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd

from behavior_model import registry
from behavior_model.text import TextEmbedder
from pipeline.context import RunContext
from pipeline.lake import read_partitions, without_bots
from pipeline.tables import USER_PROPENSITY_SCORES

log = logging.getLogger(__name__)


class NothingToScoreError(RuntimeError):
    """No eligible user on the score date: scoring refuses to replace the date's rows with none."""


@dataclass(frozen=True)
class ScoreResult:
    source: str
    score_date: str
    model_name: str
    model_version: str
    rows: int


def score_users(ctx: RunContext) -> ScoreResult:
    """Score every eligible user as of ``ctx.run_date`` and replace that date's rows."""
    score_date = ctx.run_date
    registry.configure_mlflow(ctx.settings)
    name = ctx.registered_model_name
    version = registry.resolve_champion(name)
    if version is None:
        raise LookupError(
            f"no {name}@{registry.CHAMPION} in the registry at {ctx.settings.mlflow_tracking_uri}: "
            f"run the behavior_model_training DAG for source {ctx.source} first"
        )
    predictor = registry.load_version(name, version)
    predictor.embedder = TextEmbedder(predictor.text_model_path, cache_dir=ctx.settings.cache_dir)
    log.info("%s: scoring %s with %s version %s", ctx.source, score_date, name, version)
    # Bots stay in the lake but are left out of training and scoring.
    events = without_bots(read_partitions(ctx.lake.sessionized_events, end=score_date))
    if events.empty or events["event_time"].max() < pd.Timestamp(score_date, tz="UTC"):
        last = None if events.empty else events["event_time"].max().date()
        raise NothingToScoreError(
            f"{ctx.source}: no events on {score_date} in {ctx.lake.sessionized_events} (latest "
            f"event: {last}); has clickstream_daily run for that date? Existing scores are kept."
        )
    cutoff = pd.Timestamp(score_date, tz="UTC") + pd.Timedelta(days=1)
    scores = predictor.predict_users(events, cutoff)
    if scores.empty:
        raise NothingToScoreError(
            f"{ctx.source}: no user active in the {predictor.labels.lookback_days} days before "
            f"{cutoff.date()}; existing scores for {score_date} are kept"
        )
    scored_at = datetime.now(UTC).replace(tzinfo=None)  # audit stamp only, decides nothing
    rows = [
        (ctx.source, score_date, r.user_id, float(r.churn_probability),
         float(r.purchase_probability), name, version, scored_at)
        for r in scores.itertuples(index=False)
    ]  # fmt: skip
    n = ctx.warehouse.replace(
        USER_PROPENSITY_SCORES, {"source": ctx.source, "score_date": score_date}, rows
    )
    log.info("%s %s: %d users scored by %s v%s", ctx.source, score_date, n, name, version)
    return ScoreResult(ctx.source, score_date.isoformat(), name, version, n)


def main(argv: list[str] | None = None) -> None:
    from pipeline.settings import apply_process_env

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True)
    p.add_argument("--score-date", type=date.fromisoformat, required=True)
    a = p.parse_args(argv)
    ctx = RunContext.create(a.source, a.score_date, settings=apply_process_env())
    r = score_users(ctx)
    print(f"wrote {r.rows} rows for {r.score_date} ({r.model_name} v{r.model_version})")


if __name__ == "__main__":
    main()
