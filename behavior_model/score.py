"""Nightly scoring: the source's champion scores every eligible user as of the run date, and the
insight tables are written beside the scores.

    python -m behavior_model.score --source sample_clickstream --score-date 2026-03-01

Inputs are the events strictly before the midnight after ``score_date`` (UTC). The champion alias
is resolved to a version once; that exact version scores and is stamped on every row. For
(source, score_date), one transaction replaces:

- ``user_propensity_scores``: churn and purchase probabilities;
- ``user_profiles``: recency, frequency, monetary value, activity windows, ... (no model);
- ``user_embeddings`` and ``segment_summary``: the model's user vectors and their segments;
- ``user_score_explanations``: the top three drivers of each score;
- ``model_monitoring``: PSI of every input and score against the champion's training reference;
- ``model_performance_history``: pending for this date, and realised metrics for the earlier
  score dates whose label window has now passed.

Then the nightly report (``data/reports/<date>/<source>.html``) is written and logged to MLflow with
the scoring run. A date without eligible users (no data, an empty day, a missing partition) fails
with a message naming the cause and leaves that date's existing rows as they are.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from behavior_model import monitoring, registry
from behavior_model.config import LABELS, label_config
from behavior_model.data import make_labels
from behavior_model.explain import explain
from behavior_model.features import rfm_features
from behavior_model.nightly_report import write_report
from behavior_model.profiles import PROFILE_COLUMNS, user_profiles
from behavior_model.segments import describe, segment
from behavior_model.text import TextEmbedder
from pipeline import tables as t
from pipeline.context import RunContext
from pipeline.lake import read_partitions, without_bots
from pipeline.warehouse import Replacement, Warehouse

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
    # Worst drift status of the run (ok, warn, fail, no_reference) and the inputs past warn.
    drift_status: str = "ok"
    drifting: list[str] = field(default_factory=list)
    report: str | None = None
    mlflow_run_id: str | None = None


def previous_segments(
    wh: Warehouse, source: str, score_date: date, model_name: str, version: str
) -> tuple[dict[int, np.ndarray] | None, str | None]:
    """Centroids and k choice of the latest earlier date scored by the same model version."""
    rows = wh.query(
        "SELECT segment_id, centroid, k_choice FROM segment_summary WHERE source = ? "
        "AND model_name = ? AND model_version = ? AND score_date = (SELECT max(score_date) "
        "FROM segment_summary WHERE source = ? AND model_name = ? AND model_version = ? "
        "AND score_date < ?)",
        [source, model_name, version, source, model_name, version, score_date],
    )
    if not rows:
        return None, None
    k_choice = rows[0][2].removeprefix("kept from the previous date (").removesuffix(")")
    return {int(r[0]): np.asarray(r[1], dtype=float) for r in rows}, k_choice


def _none_if_nan(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else v


def segment_rows(
    key: tuple,
    name: str,
    version: str,
    seg,
    profiles: pd.DataFrame,
    scores: pd.DataFrame,
    previous: dict[int, np.ndarray] | None,
) -> list[tuple]:
    out = []
    n = len(scores)
    for sid, centre in sorted(seg.centroids.items()):
        members = seg.segment_of_user == sid
        p = profiles[members]
        out.append((
            *key, sid, name, version, int(members.sum()), float(members.sum() / n),
            float(scores["churn_probability"][members].mean()),
            float(scores["purchase_probability"][members].mean()),
            float(pd.to_numeric(p["recency_days"]).median()),
            float(pd.to_numeric(p["orders"]).mean()),
            float(pd.to_numeric(p["monetary"]).mean()),
            float(pd.to_numeric(p["events_30d"]).mean()),
            describe(p, profiles), seg.k_choice, centre.astype(float).tolist(),
        ))  # fmt: skip
    for sid in seg.emptied:
        # The row keeps the segment's last centre, so the next date can match users to it again.
        log.warning("segment %d has no users on %s: kept as an empty row", sid, key[1])
        out.append((
            *key, sid, name, version, 0, 0.0, None, None, None, None, None, None,
            "empty on this date: no user's vector is near this segment any more", seg.k_choice,
            previous[sid].astype(float).tolist(),
        ))  # fmt: skip
    return out


def performance_replacements(
    wh: Warehouse, events: pd.DataFrame, ctx: RunContext, name: str, version: str,
    scores: pd.DataFrame,
) -> list[Replacement]:  # fmt: skip
    """This date's pending rows, and realised metrics for the earlier score dates whose label
    window has passed by this run date (those still pending, and the one maturing today)."""
    source, run_date = ctx.source, ctx.run_date
    labels = label_config(ctx.mapping.labels)
    horizons = {"churn": labels.churn_horizon_days, "purchase": labels.purchase_horizon_days}
    out: list[Replacement] = []
    stored_by_day: dict[date, list[tuple]] = {}

    def row(day, label, model_name, model_version, horizon, r) -> Replacement:
        values = (
            source, day, label, model_name, model_version, horizon,
            monitoring.labels_complete_on(day, horizon), r.status, run_date, r.users,
            _none_if_nan(r.positive_rate), r.mean_probability, _none_if_nan(r.roc_auc),
            _none_if_nan(r.pr_auc), _none_if_nan(r.ece), r.message,
        )  # fmt: skip
        key = {"source": source, "score_date": day, "label": label}
        return (t.MODEL_PERFORMANCE_HISTORY, key, [values])

    for j, label in enumerate(LABELS):
        horizon = horizons[label]
        pending = monitoring.realised_performance(
            None,
            scores[f"{label}_probability"].to_numpy(),
            score_date=run_date,
            complete_on=monitoring.labels_complete_on(run_date, horizon),
        )
        out.append(row(run_date, label, name, version, horizon, pending))
        last_mature = run_date - timedelta(days=horizon)
        matured = wh.query(
            "SELECT DISTINCT s.score_date FROM user_propensity_scores s "
            "LEFT JOIN model_performance_history h ON h.source = s.source "
            "AND h.score_date = s.score_date AND h.label = ? "
            "WHERE s.source = ? AND s.score_date <= ? "
            "AND (h.status IS NULL OR h.status = 'pending' OR s.score_date = ?) "
            "ORDER BY 1",
            [label, source, last_mature, last_mature],
        )
        for (day,) in matured:
            if day not in stored_by_day:  # both labels of a date read its scores once
                stored_by_day[day] = wh.query(
                    "SELECT user_id, churn_probability, purchase_probability, model_name, "
                    "model_version FROM user_propensity_scores WHERE source = ? "
                    "AND score_date = ? ORDER BY user_id",
                    [source, day],
                )
            stored = stored_by_day[day]
            users = np.array([r[0] for r in stored], dtype=object)
            cutoff = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
            y = make_labels(events, users, cutoff, labels)[1 if label == "churn" else 0]
            p = np.array([r[1 + j] for r in stored], dtype=float)
            r = monitoring.realised_performance(
                y, p, score_date=day, complete_on=monitoring.labels_complete_on(day, horizon)
            )
            log.info("%s %s %s: %s (ROC-AUC %s)", source, day, label, r.status, r.roc_auc)
            out.append(row(day, label, stored[0][3], stored[0][4], horizon, r))
    return out


def score_users(ctx: RunContext) -> ScoreResult:
    """Score every eligible user as of ``ctx.run_date``; replace that date's rows in every
    insight table in one transaction; write the nightly report and the MLflow scoring run."""
    score_date, source, settings = ctx.run_date, ctx.source, ctx.settings
    registry.configure_mlflow(settings)
    name = ctx.registered_model_name
    version = registry.resolve_champion(name)
    if version is None:
        raise LookupError(
            f"no {name}@{registry.CHAMPION} in the registry at {settings.mlflow_tracking_uri}: "
            f"run the behavior_model_training DAG for source {source} first"
        )
    predictor = registry.load_version(name, version)
    predictor.embedder = TextEmbedder(predictor.text_model_path, cache_dir=settings.cache_dir)
    log.info("%s: scoring %s with %s version %s", source, score_date, name, version)
    # Bots stay in the lake but are left out of training and scoring.
    events = without_bots(read_partitions(ctx.lake.sessionized_events, end=score_date))
    if events.empty or events["event_time"].max() < pd.Timestamp(score_date, tz="UTC"):
        last = None if events.empty else events["event_time"].max().date()
        raise NothingToScoreError(
            f"{source}: no events on {score_date} in {ctx.lake.sessionized_events} (latest "
            f"event: {last}); has clickstream_daily run for that date? Existing scores are kept."
        )
    cutoff = pd.Timestamp(score_date, tz="UTC") + pd.Timedelta(days=1)
    ex = predictor.examples(events, cutoff, with_labels=False)
    if len(ex) == 0:
        raise NothingToScoreError(
            f"{source}: no user active in the {predictor.labels.lookback_days} days before "
            f"{cutoff.date()}; existing scores for {score_date} are kept"
        )
    probs, vectors = predictor.predict_with_vectors(ex)
    users = ex.user_id
    scores = pd.DataFrame(
        {f"{label}_probability": probs[:, j].astype(float) for j, label in enumerate(LABELS)}
    )
    key = (source, score_date)
    wh = ctx.warehouse
    scored_at = datetime.now(UTC).replace(tzinfo=None)  # audit stamp only, decides nothing
    score_rows = [
        (*key, u, float(c), float(p), name, version, scored_at)
        for u, c, p in zip(users, scores["churn_probability"], scores["purchase_probability"], strict=True)
    ]  # fmt: skip

    profiles = user_profiles(events, cutoff, users)
    profile_rows = [
        (*key, u, *row) for u, row in zip(users, profiles[list(PROFILE_COLUMNS)].itertuples(index=False), strict=True)
    ]  # fmt: skip

    previous, previous_k = previous_segments(wh, source, score_date, name, version)
    seg = segment(vectors, previous, previous_k)
    embedding_rows = [
        (*key, u, name, version, int(s), v.astype(float).tolist())
        for u, s, v in zip(users, seg.segment_of_user, vectors, strict=True)
    ]
    summary_rows = segment_rows(
        key, name, version, seg, profiles.reset_index(drop=True), scores, previous
    )

    drivers = explain(predictor.model, ex)
    explanation_rows = [
        (*key, r.user_id, r.label, int(r.rank), r.driver, r.description, float(r.weight), version)
        for r in drivers.itertuples(index=False)
    ]

    inputs = rfm_features(events, cutoff, users)
    health = ctx.mapping.monitoring
    warn, fail = health.psi_warn, health.psi_fail
    drift = monitoring.drift(
        predictor.reference, inputs, scores, warn=warn, fail=fail, trend=health.trend_features
    )
    monitoring_rows = [
        (*key, d.name, d.kind, name, version, d.psi, d.reference_mean, d.current_mean, d.status,
         warn, fail, d.message)
        for d in drift
    ]  # fmt: skip
    status = monitoring.worst_status(d.status for d in drift)
    drifting = [f"{d.name} (PSI {d.psi:.2f})" for d in drift if d.status in ("warn", "fail")]
    if status in ("warn", "fail"):
        log.warning("%s %s: model health %s: %s", source, score_date, status, ", ".join(drifting))
    elif status == "no_reference":
        log.warning("%s %s: %s", source, score_date, drift[0].message)

    day = {"source": source, "score_date": score_date}
    replacements: list[Replacement] = [
        (t.USER_PROPENSITY_SCORES, day, score_rows),
        (t.USER_PROFILES, day, profile_rows),
        (t.USER_EMBEDDINGS, day, embedding_rows),
        (t.SEGMENT_SUMMARY, day, summary_rows),
        (t.USER_SCORE_EXPLANATIONS, day, explanation_rows),
        (t.MODEL_MONITORING, day, monitoring_rows),
    ]
    # Performance rows read this date's stored scores: write the scores first, then (a second
    # transaction) the performance rows; a crash between them leaves them pending, and the next
    # run fills them in.
    wh.replace_all(replacements)
    wh.replace_all(performance_replacements(wh, events, ctx, name, version, scores))
    log.info(
        "%s %s: %d users scored by %s v%s, %d segments, model health %s",
        source, score_date, len(score_rows), name, version, len(seg.centroids), status,
    )  # fmt: skip

    report = write_report(wh, settings.reports_dir, source, score_date, warn=warn, fail=fail)
    run_id = registry.log_scoring_run(
        settings,
        source=source,
        score_date=score_date,
        tags={"model_name": name, "model_version": version, "model_health": status},
        metrics={
            "users": len(score_rows),
            "mean_churn_probability": float(scores["churn_probability"].mean()),
            "mean_purchase_probability": float(scores["purchase_probability"].mean()),
            "segments": len(seg.centroids),
            "max_input_psi": max(
                (d.psi for d in drift if d.kind == "input" and d.psi is not None), default=0.0
            ),
        },  # fmt: skip
        report=report,
    )
    log.info("%s %s: report %s (MLflow run %s)", source, score_date, report, run_id)
    return ScoreResult(
        source, score_date.isoformat(), name, version, len(score_rows), status, drifting,
        str(report), run_id,
    )  # fmt: skip


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
    print(f"report: {r.report}")
    if r.drift_status == "fail":
        raise SystemExit(f"model health fail: {', '.join(r.drifting)}")


if __name__ == "__main__":
    main()
