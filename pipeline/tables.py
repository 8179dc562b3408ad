"""Every warehouse table, declared once: columns, types, keys and the comments that explain them.

``\\d+ user_profiles`` in psql or ``SELECT * FROM duckdb_columns()`` shows the comments. The types
are written so that DuckDB and PostgreSQL both accept them. Per-user tables carry ``source`` in
their key: one warehouse serves every source, and scoring one source never touches another's rows.
"""

from __future__ import annotations

from dataclasses import dataclass


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Table:
    name: str
    comment: str
    # (name, SQL type, comment)
    columns: tuple[tuple[str, str, str], ...]
    primary_key: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        return [c[0] for c in self.columns]

    def ddl(self) -> list[str]:
        cols = ", ".join(
            f"{n} {t} NOT NULL" if n in self.primary_key else f"{n} {t}" for n, t, _ in self.columns
        )
        stmts = [
            f"CREATE TABLE IF NOT EXISTS {self.name} ({cols}, PRIMARY KEY ({', '.join(self.primary_key)}))",
            f"COMMENT ON TABLE {self.name} IS {quote(self.comment)}",
        ]
        stmts += [f"COMMENT ON COLUMN {self.name}.{n} IS {quote(c)}" for n, _, c in self.columns]
        return stmts


_SOURCE = ("source", "VARCHAR", "Source mapping name (pipeline/sources/<source>.yaml)")
_SCORE_DATE = (
    "score_date",
    "DATE",
    "Computed from events strictly before the day after score_date (UTC)",
)
_USER = ("user_id", "VARCHAR", "User id as in the lake (source user id)")
_MODEL_NAME = ("model_name", "VARCHAR", "MLflow registered model name")
_MODEL_VERSION = ("model_version", "VARCHAR", "MLflow model version that produced the row")

USER_PROPENSITY_SCORES = Table(
    name="user_propensity_scores",
    comment=(
        "One row per source, score date and eligible user: churn and purchase probabilities from "
        "the behaviour model that held the champion alias when the nightly scoring ran."
    ),
    columns=(
        _SOURCE,
        _SCORE_DATE,
        _USER,
        (
            "churn_probability",
            "DOUBLE PRECISION",
            "P(no event of any type in the churn horizon after score_date)",
        ),
        (
            "purchase_probability",
            "DOUBLE PRECISION",
            "P(at least one purchase in the purchase horizon)",
        ),
        _MODEL_NAME,
        _MODEL_VERSION,
        (
            "scored_at",
            "TIMESTAMP",
            "Wall-clock time the row was written (audit only, not a data input)",
        ),
    ),
    primary_key=("source", "score_date", "user_id"),
)

USER_PROFILES = Table(
    name="user_profiles",
    comment=(
        "Who each scored user is, as of score_date: recency, frequency, monetary value, activity "
        "windows, tenure, basket size, favourite categories and share of returns. Plain counts "
        "from the lake, no model."
    ),
    columns=(
        _SOURCE,
        _SCORE_DATE,
        _USER,
        ("recency_days", "DOUBLE PRECISION", "Days from the last event to the end of score_date"),
        (
            "purchase_recency_days",
            "DOUBLE PRECISION",
            "Days from the last purchase to the end of score_date; NULL = never purchased",
        ),
        ("orders", "BIGINT", "Frequency: purchase baskets (one timestamp = one basket) ever"),
        ("monetary", "DOUBLE PRECISION", "Monetary value: sum of price x quantity over purchases"),
        ("events_7d", "BIGINT", "Events in the 7 days up to score_date"),
        ("events_30d", "BIGINT", "Events in the 30 days up to score_date"),
        ("events_90d", "BIGINT", "Events in the 90 days up to score_date"),
        ("tenure_days", "DOUBLE PRECISION", "Days from the first event to the end of score_date"),
        (
            "avg_basket_value",
            "DOUBLE PRECISION",
            "monetary / orders; NULL = no purchase yet",
        ),
        (
            "favourite_categories",
            "VARCHAR",
            "Up to three categories with the most events, most first; NULL = the source has no "
            "categories for this user's items",
        ),
        (
            "return_share",
            "DOUBLE PRECISION",
            "returns / (purchases + returns) in events; NULL = neither bought nor returned",
        ),
    ),
    primary_key=("source", "score_date", "user_id"),
)

USER_EMBEDDINGS = Table(
    name="user_embeddings",
    comment=(
        "The behaviour model's user vector (its last hidden state plus the RFM context, what its "
        "churn and purchase heads read) and the segment the vector falls in. Compare vectors only "
        "within one model_version. Look-alikes: analytics.lookalike_users(source, user, date, n)."
    ),
    columns=(
        _SOURCE,
        _SCORE_DATE,
        _USER,
        _MODEL_NAME,
        _MODEL_VERSION,
        ("segment_id", "INTEGER", "Segment (segment_summary.segment_id) the user belongs to"),
        ("vector", "REAL[]", "User vector (hidden_size floats)"),
    ),
    primary_key=("source", "score_date", "user_id"),
)

SEGMENT_SUMMARY = Table(
    name="segment_summary",
    comment=(
        "Segments: k-means clusters of the user vectors. k is chosen by silhouette when a model "
        "version first scores and kept while it scores; ids stay stable across days by matching "
        "to the previous score date's centroids. A segment that lost all its users keeps a row "
        "with users = 0 and says so in description."
    ),
    columns=(
        _SOURCE,
        _SCORE_DATE,
        ("segment_id", "INTEGER", "Stable segment id (stable while one model version scores)"),
        _MODEL_NAME,
        _MODEL_VERSION,
        ("users", "BIGINT", "Users in the segment on score_date"),
        ("share", "DOUBLE PRECISION", "users / all scored users"),
        ("mean_churn_probability", "DOUBLE PRECISION", "NULL only when users = 0"),
        ("mean_purchase_probability", "DOUBLE PRECISION", "NULL only when users = 0"),
        ("median_recency_days", "DOUBLE PRECISION", "From user_profiles; NULL only when users = 0"),
        ("mean_orders", "DOUBLE PRECISION", "From user_profiles; NULL only when users = 0"),
        ("mean_monetary", "DOUBLE PRECISION", "From user_profiles; NULL only when users = 0"),
        ("mean_events_30d", "DOUBLE PRECISION", "From user_profiles; NULL only when users = 0"),
        (
            "description",
            "VARCHAR",
            "Readable description from the segment's profile statistics against all users",
        ),
        ("k_choice", "VARCHAR", "How k was chosen (criterion and value)"),
        ("centroid", "REAL[]", "Cluster centre in the L2-normalised vector space"),
    ),
    primary_key=("source", "score_date", "segment_id"),
)

USER_SCORE_EXPLANATIONS = Table(
    name="user_score_explanations",
    comment=(
        "The top drivers of each user's churn and purchase score: how much each moves the "
        "score's logit. Event transformer and pretrained LM versions: by ablation (the user's "
        "events of one type in one age window masked out of the sequence, or one RFM feature set "
        "to the training mean). Hybrid versions: the LightGBM stack's TreeSHAP contributions, the "
        "sequence model's outputs together as one driver. "
        "weight > 0 raises the probability, weight < 0 lowers it."
    ),
    columns=(
        _SOURCE,
        _SCORE_DATE,
        _USER,
        ("label", "VARCHAR", "churn or purchase"),
        ("rank", "INTEGER", "1 = the strongest driver by |weight|"),
        (
            "driver",
            "VARCHAR",
            "Driver code: feature:<rfm feature>, events:<event type>:<window>, or sequence "
            "(hybrid versions: what the sequence model read)",
        ),
        ("description", "VARCHAR", "The driver in words, with the user's own value"),
        (
            "weight",
            "DOUBLE PRECISION",
            "The signed change in log-odds the driver makes: logit(user) - logit(user without "
            "this driver) by ablation (drivers interact, so weights need not add up), or its "
            "TreeSHAP contribution for hybrid versions",
        ),
        _MODEL_VERSION,
    ),
    primary_key=("source", "score_date", "user_id", "label", "rank"),
)

MODEL_MONITORING = Table(
    name="model_monitoring",
    comment=(
        "Drift per scoring run: population stability index (PSI) of each model input and of both "
        "scores against the champion's reference population (the users on its training date). "
        "status: ok, ok_trend (an input the source mapping declares trending by construction), "
        "warn (psi >= warn_threshold), fail (psi >= fail_threshold: the nightly_scoring run "
        "fails) or no_reference (the champion carries none; message says why)."
    ),
    columns=(
        _SOURCE,
        _SCORE_DATE,
        ("name", "VARCHAR", "Input feature (RFM) or score (churn_probability, ...)"),
        ("kind", "VARCHAR", "input or score"),
        _MODEL_NAME,
        _MODEL_VERSION,
        ("psi", "DOUBLE PRECISION", "Population stability index; NULL only for no_reference"),
        ("reference_mean", "DOUBLE PRECISION", "Mean in the training reference"),
        ("current_mean", "DOUBLE PRECISION", "Mean over the users scored on score_date"),
        ("status", "VARCHAR", "ok, ok_trend, warn, fail or no_reference"),
        ("warn_threshold", "DOUBLE PRECISION", "PSI at which the run warns (mapping monitoring)"),
        ("fail_threshold", "DOUBLE PRECISION", "PSI at which the run fails (mapping monitoring)"),
        ("message", "VARCHAR", "What the status means for this row"),
    ),
    primary_key=("source", "score_date", "name"),
)

MODEL_PERFORMANCE_HISTORY = Table(
    name="model_performance_history",
    comment=(
        "Did the scores come true? Once a score date's label window has passed (score_date + "
        "horizon), the realised ROC-AUC, calibration error and positive rate of that date's "
        "stored scores. Until then status = pending and the metric columns are NULL."
    ),
    columns=(
        _SOURCE,
        _SCORE_DATE,
        ("label", "VARCHAR", "churn or purchase"),
        _MODEL_NAME,
        _MODEL_VERSION,
        ("horizon_days", "INTEGER", "Label window after score_date"),
        (
            "labels_complete_on",
            "DATE",
            "First run date whose lake holds the whole label window",
        ),
        ("status", "VARCHAR", "pending (labels not complete), realised, or undefined"),
        ("evaluated_as_of", "DATE", "Run date of the scoring run that wrote the row"),
        ("users", "BIGINT", "Users scored on score_date"),
        ("positive_rate", "DOUBLE PRECISION", "Share of users whose label came true"),
        ("mean_probability", "DOUBLE PRECISION", "Mean predicted probability"),
        ("roc_auc", "DOUBLE PRECISION", "Realised ROC-AUC; NULL when pending or one class only"),
        ("pr_auc", "DOUBLE PRECISION", "Realised average precision"),
        ("ece", "DOUBLE PRECISION", "Expected calibration error (10 equal-width bins)"),
        ("message", "VARCHAR", "What the status means for this row"),
    ),
    primary_key=("source", "score_date", "label"),
)

ETL_RUN_SUMMARY = Table(
    name="etl_run_summary",
    comment="Row accounting per source and arrival day: raw = clean + quarantined + duplicate.",
    columns=(
        _SOURCE,
        ("run_date", "DATE", "Arrival day of the raw files the run owns"),
        ("raw_rows", "BIGINT", "Data lines in the day's raw files (headers excluded)"),
        ("clean_rows", "BIGINT", "Rows written to the lake"),
        ("quarantined_rows", "BIGINT", "Rows rejected with a reason (see etl_quarantine_counts)"),
        ("duplicate_rows", "BIGINT", "Valid rows whose event_id was already seen"),
        ("unaccounted_rows", "BIGINT", "raw - clean - quarantined - duplicate; always 0"),
    ),
    primary_key=("source", "run_date"),
)

ETL_BOT_ACTIVITY = Table(
    name="etl_bot_activity",
    comment=(
        "Users flagged as bots per source and event date (more events in one minute than the "
        "mapping's bot_events_per_minute): kept in the lake, left out of training and scoring."
    ),
    columns=(
        _SOURCE,
        ("event_date", "DATE", "UTC date of the events"),
        ("bot_users", "BIGINT", "Users flagged as bots on this event date"),
        ("bot_events", "BIGINT", "Events of those users on this event date"),
    ),
    primary_key=("source", "event_date"),
)

ETL_QUARANTINE_COUNTS = Table(
    name="etl_quarantine_counts",
    comment="Quarantined rows per source, arrival day and reason code (codes: pipeline/contracts.py).",
    columns=(
        _SOURCE,
        ("run_date", "DATE", "Arrival day of the raw files"),
        (
            "reason",
            "VARCHAR",
            "Reason code, e.g. malformed, missing_user_id (pipeline/contracts.py)",
        ),
        ("rows", "BIGINT", "Quarantined rows with that reason"),
    ),
    primary_key=("source", "run_date", "reason"),
)

TABLES = (
    USER_PROPENSITY_SCORES,
    USER_PROFILES,
    USER_EMBEDDINGS,
    SEGMENT_SUMMARY,
    USER_SCORE_EXPLANATIONS,
    MODEL_MONITORING,
    MODEL_PERFORMANCE_HISTORY,
    ETL_RUN_SUMMARY,
    ETL_QUARANTINE_COUNTS,
    ETL_BOT_ACTIVITY,
)
