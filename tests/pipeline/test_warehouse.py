"""The warehouse: per-key replace in one transaction, on DuckDB and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import pytest

from pipeline.tables import USER_PROPENSITY_SCORES
from pipeline.warehouse import SchemaMismatchError, Warehouse

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _rows(day: date, users: list[str], p: float = 0.5, source: str = "s"):
    return [
        (source, day, u, p, 1 - p, f"behavior-model-{source}", "1", datetime(2026, 1, 1))
        for u in users
    ]


def _key(day: date, source: str = "s") -> dict:
    return {"source": source, "score_date": day}


def _postgres_url():
    psycopg = pytest.importorskip("psycopg")
    schema = f"t_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as con:
            con.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {e}")
    return schema, f"{PG_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse(request, tmp_path):
    if request.param == "duckdb":
        yield Warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
        return
    schema, url = _postgres_url()
    yield Warehouse(url)
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as con:
        con.execute(f"DROP SCHEMA {schema} CASCADE")


def test_replace_swaps_one_key_and_leaves_others(warehouse):
    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)
    warehouse.replace(USER_PROPENSITY_SCORES, _key(d1), _rows(d1, ["a", "b"]))
    warehouse.replace(USER_PROPENSITY_SCORES, _key(d2), _rows(d2, ["a"]))
    warehouse.replace(USER_PROPENSITY_SCORES, _key(d1), _rows(d1, ["b", "c", "d"], p=0.9))
    got = warehouse.query(
        "SELECT score_date, user_id, churn_probability FROM user_propensity_scores ORDER BY 1, 2"
    )
    assert [(str(r[0]), r[1], r[2]) for r in got] == [
        ("2026-01-01", "b", 0.9), ("2026-01-01", "c", 0.9), ("2026-01-01", "d", 0.9),
        ("2026-01-02", "a", 0.5),
    ]  # fmt: skip


def test_a_failed_write_leaves_the_previous_rows(warehouse):
    d1 = date(2026, 1, 1)
    warehouse.replace(USER_PROPENSITY_SCORES, _key(d1), _rows(d1, ["a", "b"]))
    duplicate_key = _rows(d1, ["c", "c"])  # violates the primary key mid-transaction
    with pytest.raises(Exception, match=r"(?i)duplicate|constraint|unique"):
        warehouse.replace(USER_PROPENSITY_SCORES, _key(d1), duplicate_key)
    got = warehouse.query("SELECT user_id FROM user_propensity_scores ORDER BY 1")
    assert [r[0] for r in got] == ["a", "b"]


def test_rows_must_match_the_key(warehouse):
    with pytest.raises(ValueError, match="does not match key"):
        warehouse.replace(
            USER_PROPENSITY_SCORES, _key(date(2026, 1, 1)), _rows(date(2026, 1, 2), ["a"])
        )


def test_tables_explain_themselves(tmp_path):
    wh = Warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    comments = dict(
        wh.query(
            "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'user_propensity_scores'"
        )
    )
    assert set(comments) == set(USER_PROPENSITY_SCORES.column_names)
    assert all(comments.values())


def test_one_source_never_replaces_another_sources_rows(warehouse):
    """Bug: the score table was keyed by date only, so scoring a second source on the same date
    deleted the first source's rows."""
    d1 = date(2026, 1, 1)
    warehouse.replace(USER_PROPENSITY_SCORES, _key(d1, "a"), _rows(d1, ["u1", "u2"], source="a"))
    warehouse.replace(USER_PROPENSITY_SCORES, _key(d1, "b"), _rows(d1, ["u1"], source="b"))
    got = warehouse.query(
        "SELECT source, count(*) FROM user_propensity_scores GROUP BY source ORDER BY source"
    )
    assert got == [("a", 2), ("b", 1)]


def test_a_table_of_an_older_shape_is_refused_with_the_way_out(tmp_path):
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE user_propensity_scores (score_date DATE, user_id VARCHAR)")
    con.close()
    with pytest.raises(
        SchemaMismatchError,
        match=r"user_propensity_scores has columns \['score_date', 'user_id'\].*migrate",
    ):
        Warehouse(f"duckdb:///{path}").query("SELECT 1")


def test_unknown_url_is_a_clear_error():
    with pytest.raises(ValueError, match="must start with duckdb:/// or postgresql://"):
        Warehouse("mysql://x")


def _arrow_chunks(day: date, chunks: list[list[str]], *, die_after: int | None = None):
    import pyarrow as pa

    from pipeline.warehouse import ArrowRows

    cols = USER_PROPENSITY_SCORES.column_names

    def gen():
        for i, users in enumerate(chunks):
            if die_after is not None and i == die_after:
                raise KeyboardInterrupt("killed while loading")  # a killed task, mid-stream
            rows = _rows(day, users, p=0.7)
            yield pa.table({c: pa.array([r[j] for r in rows]) for j, c in enumerate(cols)})

    return ArrowRows(gen)


def test_streamed_rows_replace_the_date_and_a_kill_mid_stream_keeps_the_old_one(warehouse):
    d1 = date(2026, 1, 1)
    warehouse.replace(USER_PROPENSITY_SCORES, _key(d1), _rows(d1, ["a", "b"]))
    loaded = warehouse.replace_all(
        [(USER_PROPENSITY_SCORES, _key(d1), _arrow_chunks(d1, [["c", "d"], ["e"]]))]
    )
    got = warehouse.query(
        "SELECT user_id, churn_probability FROM user_propensity_scores ORDER BY 1"
    )
    assert loaded == 3 and got == [("c", 0.7), ("d", 0.7), ("e", 0.7)]
    # Killed after the first chunk went in: the reader still sees the complete previous date.
    with pytest.raises(KeyboardInterrupt):
        warehouse.replace_all(
            [(USER_PROPENSITY_SCORES, _key(d1), _arrow_chunks(d1, [["x"], ["y"]], die_after=1))]
        )
    got = warehouse.query("SELECT user_id FROM user_propensity_scores ORDER BY 1")
    assert [r[0] for r in got] == ["c", "d", "e"]
    with pytest.raises(ValueError, match="do not match key"):
        warehouse.replace_all(
            [(USER_PROPENSITY_SCORES, _key(d1), _arrow_chunks(date(2026, 1, 2), [["z"]]))]
        )
