"""The analysts' side of the warehouse: the ``analytics`` schema, its views, the look-alike
function and (PostgreSQL) a read-only ``analyst`` role. Created by ``warehouse init``.

Pipeline tables stay in the base schema (``public`` or the URL's search_path on PostgreSQL,
``main`` in DuckDB); analysts read the views in ``analytics`` (and may read the tables). The view
SQL is written once for both databases; only the look-alike function differs (DuckDB table macro
over ``list_cosine_similarity``; a SQL function on PostgreSQL).
"""

from __future__ import annotations

from typing import Any

from pipeline.tables import quote

SCHEMA = "analytics"

# name -> (comment, SELECT over the base schema; {b} is the base schema)
VIEWS: dict[str, tuple[str, str]] = {
    "latest_user_scores": (
        "Each source's most recent score date: every scored user's probabilities, segment, "
        "profile and the top reason behind each score. Start here.",
        """
WITH latest AS (
    SELECT source, max(score_date) AS score_date FROM {b}.user_propensity_scores GROUP BY source
)
SELECT s.source, s.score_date, s.user_id,
       s.churn_probability, s.purchase_probability,
       e.segment_id, g.description AS segment_description,
       c.description AS top_churn_reason, p.description AS top_purchase_reason,
       f.recency_days, f.orders, f.monetary, f.events_30d, f.tenure_days,
       s.model_name, s.model_version
FROM {b}.user_propensity_scores s
JOIN latest l ON s.source = l.source AND s.score_date = l.score_date
LEFT JOIN {b}.user_embeddings e
    ON e.source = s.source AND e.score_date = s.score_date AND e.user_id = s.user_id
LEFT JOIN {b}.segment_summary g
    ON g.source = s.source AND g.score_date = s.score_date AND g.segment_id = e.segment_id
LEFT JOIN {b}.user_profiles f
    ON f.source = s.source AND f.score_date = s.score_date AND f.user_id = s.user_id
LEFT JOIN {b}.user_score_explanations c
    ON c.source = s.source AND c.score_date = s.score_date AND c.user_id = s.user_id
   AND c.label = 'churn' AND c.rank = 1
LEFT JOIN {b}.user_score_explanations p
    ON p.source = s.source AND p.score_date = s.score_date AND p.user_id = s.user_id
   AND p.label = 'purchase' AND p.rank = 1
""",
    ),
    "user_score_history": (
        "Every score of every user over time, with the change since that user's previous score "
        "date (NULL on a user's first date).",
        """
SELECT source, score_date, user_id, churn_probability, purchase_probability,
       lag(score_date) OVER w AS previous_score_date,
       churn_probability - lag(churn_probability) OVER w AS churn_change,
       purchase_probability - lag(purchase_probability) OVER w AS purchase_change,
       model_version
FROM {b}.user_propensity_scores
WINDOW w AS (PARTITION BY source, user_id ORDER BY score_date)
""",
    ),
    "segment_summary": (
        "Segments per source and score date: size, mean scores, profile statistics and a "
        "readable description (centroids left out; they live in the base table).",
        """
SELECT source, score_date, segment_id, users, share,
       mean_churn_probability, mean_purchase_probability,
       median_recency_days, mean_orders, mean_monetary, mean_events_30d,
       description, k_choice, model_name, model_version
FROM {b}.segment_summary
""",
    ),
    "model_health": (
        "Per source and score date: input and score drift (PSI against the champion's training "
        "reference, the drifting inputs named) and, once labels have matured, the realised "
        "ROC-AUC and calibration error of that date's scores.",
        """
WITH drift AS (
    SELECT source, score_date, max(model_name) AS model_name, max(model_version) AS model_version,
           max(CASE WHEN kind = 'input' THEN psi END) AS max_input_psi,
           max(CASE WHEN name = 'churn_probability' THEN psi END) AS churn_score_psi,
           max(CASE WHEN name = 'purchase_probability' THEN psi END) AS purchase_score_psi,
           CASE WHEN bool_or(status = 'fail') THEN 'fail'
                WHEN bool_or(status = 'warn') THEN 'warn'
                WHEN bool_or(status = 'no_reference') THEN 'no_reference'
                ELSE 'ok' END AS drift_status,
           string_agg(CASE WHEN status IN ('warn', 'fail')
                           THEN name || ' ' || CAST(CAST(psi AS DECIMAL(8, 2)) AS VARCHAR) END,
                      ', ' ORDER BY name) AS drifting
    FROM {b}.model_monitoring
    GROUP BY source, score_date
), perf AS (
    SELECT source, score_date,
           max(CASE WHEN label = 'churn' THEN status END) AS churn_label_status,
           max(CASE WHEN label = 'churn' THEN roc_auc END) AS realised_churn_roc_auc,
           max(CASE WHEN label = 'churn' THEN ece END) AS realised_churn_ece,
           max(CASE WHEN label = 'churn' THEN positive_rate END) AS realised_churn_rate,
           max(CASE WHEN label = 'churn' THEN mean_probability END) AS mean_churn_probability,
           max(CASE WHEN label = 'purchase' THEN status END) AS purchase_label_status,
           max(CASE WHEN label = 'purchase' THEN roc_auc END) AS realised_purchase_roc_auc,
           max(CASE WHEN label = 'purchase' THEN ece END) AS realised_purchase_ece,
           max(CASE WHEN label = 'purchase' THEN positive_rate END) AS realised_purchase_rate,
           max(CASE WHEN label = 'purchase' THEN mean_probability END)
               AS mean_purchase_probability,
           max(labels_complete_on) AS all_labels_complete_on
    FROM {b}.model_performance_history
    GROUP BY source, score_date
)
SELECT coalesce(d.source, p.source) AS source, coalesce(d.score_date, p.score_date) AS score_date,
       d.model_name, d.model_version, d.drift_status, d.drifting, d.max_input_psi,
       d.churn_score_psi, d.purchase_score_psi,
       p.churn_label_status, p.realised_churn_roc_auc, p.realised_churn_ece,
       p.realised_churn_rate, p.mean_churn_probability,
       p.purchase_label_status, p.realised_purchase_roc_auc, p.realised_purchase_ece,
       p.realised_purchase_rate, p.mean_purchase_probability, p.all_labels_complete_on
FROM drift d
FULL OUTER JOIN perf p ON d.source = p.source AND d.score_date = p.score_date
""",
    ),
}

LOOKALIKE_DOC = (
    "The n users whose behaviour vectors are nearest (cosine similarity) to the given user's on "
    "that score date, same source and model version."
)

# The look-alike query, once; each database wraps it in its own kind of table function.
_LOOKALIKE_SELECT = """
SELECT o.user_id, {similarity} AS similarity, o.segment_id,
       s.churn_probability, s.purchase_probability
FROM {b}.user_embeddings t
JOIN {b}.user_embeddings o
  ON o.source = t.source AND o.score_date = t.score_date
 AND o.model_version = t.model_version AND o.user_id <> t.user_id
JOIN {b}.user_propensity_scores s
  ON s.source = o.source AND s.score_date = o.score_date AND s.user_id = o.user_id
WHERE t.source = src AND t.user_id = target_user AND t.score_date = {day}
ORDER BY similarity DESC, o.user_id
LIMIT n
"""

_DUCKDB_LOOKALIKE = (
    "CREATE OR REPLACE MACRO analytics.lookalike_users(src, target_user, day, n) AS TABLE"
    + _LOOKALIKE_SELECT.format(
        b="{b}", similarity="list_cosine_similarity(o.vector, t.vector)", day="CAST(day AS DATE)"
    )
)

_PG_COSINE = """
CREATE OR REPLACE FUNCTION analytics.cosine_similarity(a real[], b real[])
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT sum(x * y) / nullif(sqrt(sum(x * x)) * sqrt(sum(y * y)), 0)
    FROM unnest(a, b) AS v(x, y)
$$
"""

_PG_LOOKALIKE = (
    """
CREATE OR REPLACE FUNCTION analytics.lookalike_users(
    src varchar, target_user varchar, day date, n integer
)
RETURNS TABLE (user_id varchar, similarity double precision, segment_id integer,
               churn_probability double precision, purchase_probability double precision)
LANGUAGE sql STABLE AS $$"""
    + _LOOKALIKE_SELECT.format(
        b="{b}", similarity="analytics.cosine_similarity(o.vector, t.vector)", day="day"
    )
    + "$$"
)


def create_views(con: Any, dialect: str, base: str) -> list[str]:
    """The analytics schema, its views and the look-alike function; idempotent."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for name, (comment, sql) in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {SCHEMA}.{name} AS {sql.format(b=base)}")
        con.execute(f"COMMENT ON VIEW {SCHEMA}.{name} IS {quote(comment)}")
    if dialect == "duckdb":
        con.execute(_DUCKDB_LOOKALIKE.format(b=base))
    else:
        con.execute(_PG_COSINE)
        con.execute(_PG_LOOKALIKE.format(b=base))
        con.execute(
            f"COMMENT ON FUNCTION {SCHEMA}.lookalike_users(varchar, varchar, date, integer) "
            f"IS {quote(LOOKALIKE_DOC)}"
        )
    return [
        f"schema {SCHEMA}: views {', '.join(VIEWS)}; table function lookalike_users"
        f"(source, user_id, score_date, n) over {base}"
    ]


def create_analyst_role(con: Any, base: str, role: str | None, password: str | None) -> list[str]:
    """A login role that can read the analytics views and the pipeline tables, and nothing else.

    Idempotent: an existing role gets the password and grants again. Without a password nothing
    is created, and the returned line says which variable to set.
    """
    from psycopg import sql

    if not role or not password:
        return [
            "analyst role not created: set WAREHOUSE_ANALYST_PASSWORD (and optionally "
            "WAREHOUSE_ANALYST_ROLE) and run `warehouse init` again"
        ]
    r = sql.Identifier(role)
    exists = con.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
    verb = "ALTER" if exists else "CREATE"
    con.execute(
        sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            r, sql.Literal(password)
        )
    )
    database = con.execute("SELECT current_database()").fetchone()[0]
    statements = [
        # Every session of the role is read-only, whatever it is granted by mistake later.
        "ALTER ROLE {r} SET default_transaction_read_only = on",
        "GRANT CONNECT ON DATABASE {db} TO {r}",
        "REVOKE CREATE ON SCHEMA {base} FROM {r}",
        "REVOKE CREATE ON SCHEMA {schema} FROM {r}",
        "GRANT USAGE ON SCHEMA {schema}, {base} TO {r}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {r}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA {base} TO {r}",
        "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {r}",
        # Tables the pipeline creates later are readable too.
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {base} GRANT SELECT ON TABLES TO {r}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {r}",
    ]
    for stmt in statements:
        con.execute(
            sql.SQL(stmt).format(
                r=r,
                db=sql.Identifier(database),
                base=sql.Identifier(base),
                schema=sql.Identifier(SCHEMA),
            )
        )
    return [
        f"role {role}: {'updated' if exists else 'created'}; read-only (SELECT on {SCHEMA} and {base}, no INSERT, "
        f"UPDATE, DELETE or DDL; default_transaction_read_only = on)"
    ]
