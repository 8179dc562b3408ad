"""`warehouse init`: analyst views, look-alikes and a read-only role, on DuckDB and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import pytest

from pipeline import tables as t
from pipeline.warehouse import Warehouse
from tests.conftest import PG_ADMIN, fresh_postgres_database

D1, D2 = date(2026, 3, 1), date(2026, 3, 2)
AT = datetime(2026, 3, 3)


def _fill(wh: Warehouse) -> None:
    """Two score dates of one source, three users; u2's vector points where u1's does."""
    vectors = {"u1": [1.0, 0.0, 0.0], "u2": [0.9, 0.1, 0.0], "u3": [0.0, 0.0, 1.0]}
    scores = {D1: {"u1": 0.2, "u2": 0.5, "u3": 0.9}, D2: {"u1": 0.6, "u2": 0.5, "u3": 0.8}}
    reps = []
    for day, by_user in scores.items():
        key = {"source": "s", "score_date": day}
        reps += [
            (
                t.USER_PROPENSITY_SCORES,
                key,
                [("s", day, u, c, 1 - c, "behavior-model-s", "1", AT) for u, c in by_user.items()],
            ),
            (
                t.USER_PROFILES,
                key,
                [
                    ("s", day, u, 3.0, None, 0, 0.0, 1, 4, 9, 20.0, None, "toys", None)
                    for u in by_user
                ],
            ),
            (
                t.USER_EMBEDDINGS,
                key,
                [
                    ("s", day, u, "behavior-model-s", "1", 0 if u != "u3" else 1, vectors[u])
                    for u in by_user
                ],
            ),
            (
                t.SEGMENT_SUMMARY,
                key,
                [
                    (
                        "s",
                        day,
                        0,
                        "behavior-model-s",
                        "1",
                        2,
                        2 / 3,
                        0.4,
                        0.6,
                        3.0,
                        0.0,
                        0.0,
                        4.0,
                        "frequent visitors",
                        "silhouette",
                        [1.0, 0.0, 0.0],
                    ),
                    (
                        "s",
                        day,
                        1,
                        "behavior-model-s",
                        "1",
                        1,
                        1 / 3,
                        0.9,
                        0.1,
                        3.0,
                        0.0,
                        0.0,
                        4.0,
                        "lapsing",
                        "silhouette",
                        [0.0, 0.0, 1.0],
                    ),
                ],
            ),
            (
                t.USER_SCORE_EXPLANATIONS,
                key,
                [
                    (
                        "s",
                        day,
                        u,
                        label,
                        1,
                        "feature:recency_days",
                        f"{label} reason of {u}",
                        0.5,
                        "1",
                    )
                    for u in by_user
                    for label in ("churn", "purchase")
                ],
            ),
            (
                t.MODEL_MONITORING,
                key,
                [
                    (
                        "s",
                        day,
                        "recency_days",
                        "input",
                        "behavior-model-s",
                        "1",
                        0.31,
                        1.0,
                        2.0,
                        "fail",
                        0.1,
                        0.25,
                        "drifted",
                    ),
                    (
                        "s",
                        day,
                        "orders",
                        "input",
                        "behavior-model-s",
                        "1",
                        0.01,
                        1.0,
                        1.0,
                        "ok",
                        0.1,
                        0.25,
                        "stable",
                    ),
                    (
                        "s",
                        day,
                        "churn_probability",
                        "score",
                        "behavior-model-s",
                        "1",
                        0.12,
                        0.4,
                        0.5,
                        "warn",
                        0.1,
                        0.25,
                        "shifted",
                    ),
                ],
            ),
        ]
        reps.append((t.MODEL_PERFORMANCE_HISTORY, key | {"label": "churn"}, [
            ("s", day, "churn", "behavior-model-s", "1", 14, day, "realised", D2, 3, 1 / 3,
             0.5, 0.75, 0.6, 0.05, "ok"),
        ]))  # fmt: skip
    wh.replace_all(reps)


def _check_views(fetch) -> None:
    latest = fetch(
        "SELECT user_id, churn_probability, segment_id, segment_description, top_churn_reason "
        "FROM analytics.latest_user_scores ORDER BY user_id"
    )
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in latest] == [
        ("u1", 0.6, 0, "frequent visitors", "churn reason of u1"),
        ("u2", 0.5, 0, "frequent visitors", "churn reason of u2"),
        ("u3", 0.8, 1, "lapsing", "churn reason of u3"),
    ]
    history = fetch(
        "SELECT user_id, score_date, previous_score_date, churn_change "
        "FROM analytics.user_score_history WHERE user_id = 'u1' ORDER BY score_date"
    )
    assert [(r[1], r[2]) for r in history] == [(D1, None), (D2, D1)]
    assert history[0][3] is None and history[1][3] == pytest.approx(0.4)
    health = fetch(
        "SELECT score_date, drift_status, drifting, realised_churn_roc_auc, purchase_label_status "
        "FROM analytics.model_health ORDER BY score_date"
    )
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in health] == [
        (D1, "fail", "churn_probability 0.12, recency_days 0.31", 0.75, None),
        (D2, "fail", "churn_probability 0.12, recency_days 0.31", 0.75, None),
    ]
    segments = fetch("SELECT segment_id, users FROM analytics.segment_summary WHERE score_date = "
                     "(SELECT max(score_date) FROM analytics.segment_summary) ORDER BY 1")  # fmt: skip
    assert [tuple(r) for r in segments] == [(0, 2), (1, 1)]
    alike = fetch(
        "SELECT user_id, similarity FROM analytics.lookalike_users('s', 'u1', DATE '2026-03-02', 2)"
    )
    assert [r[0] for r in alike] == ["u2", "u3"]
    assert alike[0][1] == pytest.approx(0.9 / (0.82**0.5), rel=1e-5) and alike[1][
        1
    ] == pytest.approx(0.0)


def test_duckdb_views_and_lookalikes(tmp_path):
    wh = Warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    done = wh.init()
    assert any("read_only=True" in line for line in done)
    wh.init()  # idempotent
    _fill(wh)
    _check_views(wh.query)
    comments = dict(
        wh.query("SELECT view_name, comment FROM duckdb_views() WHERE schema_name = 'analytics'")
    )
    assert set(comments) == {
        "latest_user_scores",
        "user_score_history",
        "segment_summary",
        "model_health",
    }
    assert all(comments.values())


@pytest.fixture
def pg_database():
    """A fresh database and a role name; the role goes once the database (its grants) has gone."""
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    with fresh_postgres_database("wh") as url:
        yield url, role
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f"DROP ROLE IF EXISTS {role}")


def test_postgres_analyst_role_reads_and_is_refused_writes(pg_database):
    import psycopg
    from psycopg import errors

    url, role = pg_database
    name = url.rsplit("/", 1)[1]
    wh = Warehouse(url)
    assert any("analyst role not created" in line for line in wh.init())  # no password: said so
    done = wh.init(analyst_role=role, analyst_password="s3cret'pw")
    assert any(f"role {role}: created" in line for line in done)
    assert any(
        f"role {role}: updated" in line
        for line in wh.init(analyst_role=role, analyst_password="s3cret'pw")
    )
    _fill(wh)

    url = f"postgresql://{role}:s3cret%27pw@127.0.0.1:5432/{name}"
    with psycopg.connect(url, autocommit=True) as con:

        def fetch(sql):
            return con.execute(sql).fetchall()

        _check_views(fetch)
        assert fetch("SELECT count(*) FROM user_score_explanations") == [(12,)]
        # Sessions are read-only by default ...
        with pytest.raises(errors.ReadOnlySqlTransaction):
            con.execute(
                "INSERT INTO user_propensity_scores (source, score_date, user_id) VALUES ('s', '2026-03-04', 'x')"
            )
        # ... and even with that switched off, the role has no write privilege at all.
        con.execute("SET default_transaction_read_only = off")
        with pytest.raises(errors.InsufficientPrivilege):
            con.execute(
                "INSERT INTO user_propensity_scores (source, score_date, user_id) VALUES ('s', '2026-03-04', 'x')"
            )
        with pytest.raises(errors.InsufficientPrivilege):
            con.execute("DELETE FROM user_propensity_scores")
        with pytest.raises(errors.InsufficientPrivilege):
            con.execute("DROP TABLE user_propensity_scores")
        with pytest.raises(errors.InsufficientPrivilege):
            con.execute("DROP VIEW analytics.latest_user_scores")
        with pytest.raises(errors.InsufficientPrivilege):
            con.execute("CREATE TABLE analytics.mine (x int)")
    assert wh.query("SELECT count(*) FROM user_propensity_scores") == [(6,)]
