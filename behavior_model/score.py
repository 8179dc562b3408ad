"""Nightly scoring: the source's champion scores every eligible user as of the run date on Spark,
and the insight tables are written beside the scores.

    python -m behavior_model.score --source sample_clickstream --score-date 2026-03-01

Inputs are the events strictly before the midnight after ``score_date`` (UTC). The champion alias
is resolved to a version once, on the driver; that exact version scores and is stamped on every
row. The per-user work runs on the executors of ``SPARK_MASTER`` (``local[2]`` by default, a
standalone cluster in compose):

1. ``<lake>/examples/cutoff_date=<score_date + 1>``: the example shard (``jobs.examples``);
2. ``mapInArrow`` over the shard (``behavior_model.spark_scoring``): probabilities, the user
   vector and the explanations in one pass, the model broadcast once; joined with the profiles (a
   Spark aggregation) into ``<lake>/scores/score_date=<score_date>``;
3. the driver reads column batches of that Parquet back: a sample of vectors for k-means (every
   user is then assigned), the numbers segment summaries and drift need, and the batches it
   streams into the warehouse.

For (source, score_date), one transaction replaces:

- ``user_propensity_scores``: churn and purchase probabilities;
- ``user_profiles``: recency, frequency, monetary value, activity windows, ... (no model);
- ``user_embeddings`` and ``segment_summary``: the model's user vectors and their segments;
- ``user_score_explanations``: the top three drivers of each score;
- ``model_monitoring``: PSI of every input and score against the champion's training reference;

then ``model_performance_history``: pending for this date, and realised metrics for the earlier
score dates whose label window has now passed (labels computed on Spark for the users in those
dates' lake scores). A killed run leaves the warehouse with the date's old rows or all new ones.

Then the nightly report (``data/reports/<date>/<source>.html``) is written and logged to MLflow with
the scoring run. A date without eligible users (no data, an empty day, a missing partition) fails
with a message naming the cause and leaves that date's existing rows as they are.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyspark.sql import functions as F

from behavior_model import monitoring, registry
from behavior_model.config import LABELS, label_config
from behavior_model.nightly_report import write_report
from behavior_model.segments import assign, describe, segment
from behavior_model.spark_scoring import score_examples
from behavior_model.text import TextEmbedder
from jobs import examples as spark_examples
from jobs.partitions import write_partitions
from jobs.spark import get_spark
from pipeline import tables as t
from pipeline.context import RunContext
from pipeline.contracts import FEATURE_NAMES, PROFILE_COLUMNS
from pipeline.lake import table_lock
from pipeline.warehouse import ArrowRows, Replacement, Warehouse

log = logging.getLogger(__name__)


# Users per Spark task when scoring (at least one task per core), rows per Arrow batch the driver
# reads back, and the most users k-means is fitted on (every user is then assigned a segment).
USERS_PER_TASK = 50_000
BATCH_ROWS = 65_536
FIT_SAMPLE = 50_000


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
    # Seconds per phase: spark (examples, model, profiles, Parquet), driver (segments, drift),
    # warehouse (the load), report (HTML and the MLflow run).
    timings: dict[str, float] = field(default_factory=dict)


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


def _day_partition(table: Path, column: str, day: date) -> Path:
    return table / f"{column}={day.isoformat()}"


def _dataset(path: Path) -> ds.Dataset:
    return ds.dataset(path, format="parquet")


def _batches(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Column batches of a Parquet folder, one at a time: pyarrow's default read-ahead (several
    files, 16 batches) would hold a large share of a million users in memory."""
    yield from _dataset(path).to_batches(
        columns=columns, batch_size=BATCH_ROWS, batch_readahead=0, fragment_readahead=0
    )


def _matrix(vectors: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A list<float> column as an (n, dim) matrix."""
    arr = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
    n = len(arr)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    values = pc.list_flatten(arr).to_numpy(zero_copy_only=False)
    return values.reshape(n, -1)


def vector_sample(scored: Path, limit: int = FIT_SAMPLE) -> np.ndarray:
    """Every k-th user vector of a scored date (at most ``limit``), read batch by batch."""
    data = _dataset(scored)
    step = max(1, -(-data.count_rows() // limit))
    parts, seen = [], 0
    for batch in _batches(scored, ["vector"]):
        keep = np.flatnonzero((np.arange(seen, seen + batch.num_rows) % step) == 0)
        parts.append(_matrix(batch.column(0).take(pa.array(keep))))
        seen += batch.num_rows
    parts = [x for x in parts if len(x)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


SUMMARY_COLUMNS = (
    "churn_probability", "purchase_probability", "recency_days", "orders", "monetary",
    "events_7d", "events_30d", "tenure_days", "return_share",
)  # fmt: skip


def user_summary(scored: Path, centroids: dict[int, np.ndarray]) -> pd.DataFrame:
    """Per user: scores, the profile statistics segments are described by, and the segment."""
    frames = []
    for batch in _batches(scored, ["vector", *SUMMARY_COLUMNS]):
        frame = batch.select(list(SUMMARY_COLUMNS)).to_pandas()
        frame["segment_id"] = assign(_matrix(batch.column("vector")), centroids)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def warehouse_rows(
    scored: Path, key: tuple[str, date], name: str, version: str,
    segment_of_user: np.ndarray, scored_at: datetime,
) -> list[tuple[t.Table, ArrowRows]]:  # fmt: skip
    """The per-user insight tables of a scored date, streamed from its Parquet in batches.

    ``segment_of_user`` is in the order ``_batches`` reads the scored date's rows (the order
    ``user_summary`` assigned them in): each scan reads the same files in the same order.
    """
    source, score_date = key

    def constants(n: int, **values) -> dict[str, pa.Array]:
        return {k: pa.repeat(pa.scalar(v), n) for k, v in values.items()}

    def chunks(columns: list[str], build) -> ArrowRows:
        def gen():
            start = 0  # row offset of the batch in the date's rows
            for batch in _batches(scored, columns):
                if batch.num_rows:
                    yield build(batch, start)
                start += batch.num_rows

        return ArrowRows(gen)

    def keyed(batch: pa.RecordBatch, **extra) -> dict[str, pa.Array]:
        n = batch.num_rows
        return (
            constants(n, source=source, score_date=score_date)
            | {"user_id": batch["user_id"]}
            | {
                k: (v if isinstance(v, pa.Array) else pa.repeat(pa.scalar(v), n))
                for k, v in extra.items()
            }
        )

    def scores(b: pa.RecordBatch, _start: int) -> pa.Table:
        return pa.table(keyed(
            b, churn_probability=b["churn_probability"],
            purchase_probability=b["purchase_probability"], model_name=name,
            model_version=version, scored_at=scored_at,
        ))  # fmt: skip

    def profiles(b: pa.RecordBatch, _start: int) -> pa.Table:
        return pa.table(keyed(b, **{c: b[c] for c in PROFILE_COLUMNS}))

    def embeddings(b: pa.RecordBatch, start: int) -> pa.Table:
        ids = segment_of_user[start : start + b.num_rows].astype(np.int32)
        return pa.table(keyed(
            b, model_name=name, model_version=version, segment_id=pa.array(ids),
            vector=b["vector"],
        ))  # fmt: skip

    def explanations(b: pa.RecordBatch, _start: int) -> pa.Table:
        lists = b["explanations"]
        parents = pc.list_parent_indices(lists)
        flat = pc.list_flatten(lists)
        users = b["user_id"].take(parents)
        n = len(flat)
        return pa.table(
            constants(n, source=source, score_date=score_date)
            | {"user_id": users}
            | {f: flat.field(f) for f in ("label", "rank", "driver", "description", "weight")}
            | constants(n, model_version=version)
        )

    return [
        (t.USER_PROPENSITY_SCORES, chunks(["user_id", "churn_probability", "purchase_probability"], scores)),
        (t.USER_PROFILES, chunks(["user_id", *PROFILE_COLUMNS], profiles)),
        (t.USER_EMBEDDINGS, chunks(["user_id", "vector"], embeddings)),
        (t.USER_SCORE_EXPLANATIONS, chunks(["user_id", "explanations"], explanations)),
    ]  # fmt: skip


def performance_replacements(
    wh: Warehouse, spark_events, ctx: RunContext, name: str, version: str,
    scores: pd.DataFrame,
) -> list[Replacement]:  # fmt: skip
    """This date's pending rows, and realised metrics for the earlier score dates whose label
    window has passed by this run date (those still pending, and the one maturing today).

    A matured date's labels are computed on Spark for the users of its scores in the lake
    (``<lake>/scores/score_date=...``); only (probability, label) pairs reach the driver.
    """
    source, run_date = ctx.source, ctx.run_date
    labels = label_config(ctx.mapping.labels)
    horizons = {"churn": labels.churn_horizon_days, "purchase": labels.purchase_horizon_days}
    out: list[Replacement] = []
    outcomes: dict[date, pd.DataFrame | None] = {}

    def row(day, label, model_name, model_version, horizon, r) -> Replacement:
        values = (
            source, day, label, model_name, model_version, horizon,
            monitoring.labels_complete_on(day, horizon), r.status, run_date, r.users,
            _none_if_nan(r.positive_rate), r.mean_probability, _none_if_nan(r.roc_auc),
            _none_if_nan(r.pr_auc), _none_if_nan(r.ece), r.message,
        )  # fmt: skip
        key = {"source": source, "score_date": day, "label": label}
        return (t.MODEL_PERFORMANCE_HISTORY, key, [values])

    def outcome(day: date) -> pd.DataFrame | None:
        """Stored probabilities and what happened, per user of ``day``'s scores."""
        if day not in outcomes:
            partition = _day_partition(ctx.lake.scores, "score_date", day)
            if not partition.exists():
                log.warning("%s %s: no scores in the lake (%s): stays pending", source, day,
                            partition)  # fmt: skip
                outcomes[day] = None
            else:
                stored = spark_events.sparkSession.read.parquet(str(partition)).select(
                    "user_id", "churn_probability", "purchase_probability"
                )
                outcomes[day] = spark_examples.labels(
                    spark_events, stored, spark_examples.cutoff_of(day),
                    purchase_days=labels.purchase_horizon_days,
                    churn_days=labels.churn_horizon_days,
                ).drop("user_id").toPandas()  # fmt: skip
        return outcomes[day]

    for label in LABELS:
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
            "SELECT s.score_date, min(s.model_name), min(s.model_version) "
            "FROM user_propensity_scores s "
            "LEFT JOIN model_performance_history h ON h.source = s.source "
            "AND h.score_date = s.score_date AND h.label = ? "
            "WHERE s.source = ? AND s.score_date <= ? "
            "AND (h.status IS NULL OR h.status = 'pending' OR s.score_date = ?) "
            "GROUP BY s.score_date ORDER BY 1",
            [label, source, last_mature, last_mature],
        )
        for day, day_model, day_version in matured:
            frame = outcome(day)
            if frame is None:
                continue
            r = monitoring.realised_performance(
                frame[label].to_numpy(), frame[f"{label}_probability"].to_numpy(),
                score_date=day, complete_on=monitoring.labels_complete_on(day, horizon),
            )  # fmt: skip
            log.info("%s %s %s: %s (ROC-AUC %s)", source, day, label, r.status, r.roc_auc)
            out.append(row(day, label, day_model, day_version, horizon, r))
    return out


def score_users(ctx: RunContext, *, explain: bool = True) -> ScoreResult:
    """Score every eligible user as of ``ctx.run_date`` on Spark; replace that date's rows in
    every insight table in one transaction; write the nightly report and the MLflow scoring run.

    The per-user work (examples, model, explanations, profiles, labels) runs on the executors of
    ``Settings.spark_master``; the driver reads back column batches of the scored date's Parquet:
    a sample of vectors for k-means, the numbers the summaries and drift need, and the batches it
    streams into the warehouse. ``explain=False`` leaves the explanations table empty for the
    date (a fraction of the model time; for sources too large to explain every user nightly).
    """
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[phase] = round(now - clock, 3)
        clock = now

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
    spark = get_spark(settings, "nightly-scoring")
    lake = ctx.lake
    cutoff = spark_examples.cutoff_of(score_date)
    scored = _day_partition(lake.scores, "score_date", score_date)
    with table_lock(lake.sessionized_events, shared=True):
        events = spark_examples.read_sessionized(spark, lake.sessionized_events, end=score_date)
        last = events.agg(F.max("event_date")).first()[0]
        if last is None or last < score_date:
            raise NothingToScoreError(
                f"{source}: no events on {score_date} in {lake.sessionized_events} (latest "
                f"event: {last}); has clickstream_daily run for that date? Existing scores are "
                "kept."
            )
        # Bots stay in the lake but are left out of training and scoring.
        events = spark_examples.without_bots(events)
        shard = spark_examples.build_examples(
            events, cutoff, lookback_days=predictor.labels.lookback_days,
            max_events=predictor.model.cfg.max_events,
        )  # fmt: skip
        spark_examples.write_examples(shard, lake.examples, [cutoff.date()])
        shard_path = _day_partition(lake.examples, spark_examples.PARTITION_COLUMN, cutoff.date())
        users = _dataset(shard_path).count_rows() if shard_path.exists() else 0
        if users == 0:
            raise NothingToScoreError(
                f"{source}: no user active in the {predictor.labels.lookback_days} days before "
                f"{cutoff.date()}; existing scores for {score_date} are kept"
            )
        shard = spark.read.parquet(str(shard_path))
        partitions = max(spark.sparkContext.defaultParallelism, -(-users // USERS_PER_TASK))
        per_user = score_examples(
            spark,
            shard,
            predictor,
            key=f"{name}:{version}",
            items=lake.item_embeddings,
            run_date=score_date,
            partitions=partitions,
            explain=explain,
        ).join(spark_examples.user_profiles(events, cutoff), "user_id", "left")
        write_partitions(
            per_user.withColumn("score_date", F.lit(score_date)), lake.scores,
            column="score_date", dates=[score_date],
        )  # fmt: skip
        log.info("%s %s: %d users scored on Spark into %s", source, score_date, users, scored)
        lap("spark")

        key = (source, score_date)
        wh = ctx.warehouse
        previous, previous_k = previous_segments(wh, source, score_date, name, version)
        seg = segment(vector_sample(scored), previous, previous_k)
        summary = user_summary(scored, seg.centroids)
        present = set(summary["segment_id"].unique().tolist())
        # Emptied: a previous segment no user is in now (unmatched, or matched but left empty).
        seg = replace(
            seg, segment_of_user=summary["segment_id"].to_numpy(),
            centroids={i: c for i, c in seg.centroids.items() if i in present},
            emptied=sorted(i for i in previous or {} if i not in present),
        )  # fmt: skip
        scores = summary[["churn_probability", "purchase_probability"]]
        profiles = summary.drop(columns=["churn_probability", "purchase_probability"])
        summary_rows = segment_rows(key, name, version, seg, profiles, scores, previous)

        # Streamed: drift accumulates bin counts batch by batch.
        inputs = (b.to_pandas() for b in _batches(shard_path, list(FEATURE_NAMES)))
        health = ctx.mapping.monitoring
        warn, fail = health.psi_warn, health.psi_fail
        drift = monitoring.drift(
            predictor.reference, inputs, scores, warn=warn, fail=fail,
            trend=health.trend_features,
        )  # fmt: skip
        monitoring_rows = [
            (*key, d.name, d.kind, name, version, d.psi, d.reference_mean, d.current_mean,
             d.status, warn, fail, d.message)
            for d in drift
        ]  # fmt: skip
        status = monitoring.worst_status(d.status for d in drift)
        drifting = [f"{d.name} (PSI {d.psi:.2f})" for d in drift if d.status in ("warn", "fail")]
        if status in ("warn", "fail"):
            log.warning(
                "%s %s: model health %s: %s", source, score_date, status, ", ".join(drifting)
            )
        elif status == "no_reference":
            log.warning("%s %s: %s", source, score_date, drift[0].message)

        day = {"source": source, "score_date": score_date}
        scored_at = datetime.now(UTC).replace(tzinfo=None)  # audit stamp only, decides nothing
        replacements: list[Replacement] = [
            (table, day, rows)
            for table, rows in warehouse_rows(
                scored, key, name, version, seg.segment_of_user, scored_at
            )
        ] + [
            (t.SEGMENT_SUMMARY, day, summary_rows),
            (t.MODEL_MONITORING, day, monitoring_rows),
        ]
        # Performance rows read this date's stored scores: write the scores first, then (a second
        # transaction) the performance rows; a crash between them leaves them pending, and the
        # next run fills them in.
        lap("driver")
        rows = wh.replace_all(replacements)
        lap("warehouse")
        wh.replace_all(performance_replacements(wh, events, ctx, name, version, scores))
        lap("performance")
    log.info(
        "%s %s: %d users scored by %s v%s (%d warehouse rows), %d segments, model health %s",
        source, score_date, users, name, version, rows, len(seg.centroids), status,
    )  # fmt: skip

    report = write_report(wh, settings.reports_dir, source, score_date, warn=warn, fail=fail)
    run_id = registry.log_scoring_run(
        settings,
        source=source,
        score_date=score_date,
        tags={"model_name": name, "model_version": version, "model_health": status},
        metrics={
            "users": users,
            "mean_churn_probability": float(scores["churn_probability"].mean()),
            "mean_purchase_probability": float(scores["purchase_probability"].mean()),
            "segments": len(seg.centroids),
            "max_input_psi": max(
                (d.psi for d in drift if d.kind == "input" and d.psi is not None), default=0.0
            ),
        },  # fmt: skip
        report=report,
    )
    lap("report")
    log.info("%s %s: report %s (MLflow run %s); seconds %s", source, score_date, report, run_id,
             timings)  # fmt: skip
    return ScoreResult(
        source, score_date.isoformat(), name, version, users, status, drifting,
        str(report), run_id, timings,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    from pipeline.settings import apply_process_env

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True)
    p.add_argument("--score-date", type=date.fromisoformat, required=True)
    p.add_argument(
        "--no-explanations", action="store_true", help="score without the reasons (faster)"
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    a = p.parse_args(argv)
    ctx = RunContext.create(a.source, a.score_date, settings=apply_process_env())
    r = score_users(ctx, explain=not a.no_explanations)
    if a.json:
        print(json.dumps(asdict(r)))
    else:
        print(f"wrote {r.rows} rows for {r.score_date} ({r.model_name} v{r.model_version})")
        print(f"report: {r.report}")
    if r.drift_status == "fail":
        raise SystemExit(f"model health fail: {', '.join(r.drifting)}")


if __name__ == "__main__":
    main()
