"""The warehouse analysts query: DuckDB file by default, PostgreSQL in production.

One URL (``WAREHOUSE_URL``) picks it: ``duckdb:///abs/path/warehouse.duckdb`` or
``postgresql://user@host:5432/db``. Tables are declared once, here, with comments on every column
so ``\\d+`` in psql or ``duckdb_columns()`` explains them. Writes replace one key (a score date, a
source and run date) in a single transaction: a rerun never duplicates rows and a reader never sees
a half-written date.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _quote(text: str) -> str:
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
            f"COMMENT ON TABLE {self.name} IS {_quote(self.comment)}",
        ]
        stmts += [f"COMMENT ON COLUMN {self.name}.{n} IS {_quote(c)}" for n, _, c in self.columns]
        return stmts


USER_PROPENSITY_SCORES = Table(
    name="user_propensity_scores",
    comment=(
        "One row per eligible user and score date: churn and purchase probabilities from the "
        "behaviour model that held the champion alias when the nightly scoring ran."
    ),
    columns=(
        ("score_date", "DATE", "Scores use events strictly before the day after score_date (UTC)"),
        ("user_id", "VARCHAR", "User id as in the lake (source user id)"),
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
        ("model_name", "VARCHAR", "MLflow registered model name"),
        ("model_version", "VARCHAR", "MLflow model version that produced the row"),
        (
            "scored_at",
            "TIMESTAMP",
            "Wall-clock time the row was written (audit only, not a data input)",
        ),
    ),
    primary_key=("score_date", "user_id"),
)

ETL_RUN_SUMMARY = Table(
    name="etl_run_summary",
    comment="Row accounting per source and arrival day: raw = clean + quarantined + duplicate.",
    columns=(
        ("source", "VARCHAR", "Source mapping name"),
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
        ("source", "VARCHAR", "Source mapping name"),
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
        ("source", "VARCHAR", "Source mapping name"),
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

TABLES = (USER_PROPENSITY_SCORES, ETL_RUN_SUMMARY, ETL_QUARANTINE_COUNTS, ETL_BOT_ACTIVITY)

# Rows for one table: (table, key the rows replace, rows in the table's column order).
Replacement = tuple[Table, Mapping[str, Any], Sequence[Sequence[Any]]]


class Warehouse:
    """A connection to the warehouse named by a URL, with the project's tables created."""

    def __init__(self, url: str) -> None:
        self.url = url
        if self.url.startswith("duckdb:///"):
            self.dialect = "duckdb"
        elif self.url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
        else:
            raise ValueError(
                f"WAREHOUSE_URL must start with duckdb:/// or postgresql://: {self.url!r}"
            )

    @contextmanager
    def connect(self) -> Iterator[Any]:
        if self.dialect == "duckdb":
            import fcntl

            import duckdb

            path = Path(self.url.removeprefix("duckdb:///"))
            path = path if path.is_absolute() else Path("/") / path
            path.parent.mkdir(parents=True, exist_ok=True)
            # A DuckDB file takes one writing process at a time: tasks running at once (a
            # backfill) queue here instead of failing with "Could not set lock on file".
            with open(path.with_name(path.name + ".lock"), "a+") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                con = duckdb.connect(str(path))
                try:
                    yield con
                finally:
                    con.close()
                    fcntl.flock(lock, fcntl.LOCK_UN)
        else:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as con:
                yield con

    def _ph(self) -> str:
        return "?" if self.dialect == "duckdb" else "%s"

    def create_tables(self, con: Any) -> None:
        for table in TABLES:
            for stmt in table.ddl():
                con.execute(stmt)

    def replace(self, table: Table, key: Mapping[str, Any], rows: Sequence[Sequence[Any]]) -> int:
        """In one transaction, delete the rows matching ``key`` and insert ``rows``."""
        return self.replace_all([(table, key, rows)])

    def replace_all(self, replacements: Sequence[Replacement]) -> int:
        """In one transaction, for each (table, key, rows): delete the key's rows, insert ``rows``.

        ``rows`` hold values in ``table.columns`` order; every row must match its key. A reader
        sees all the replacements or none of them.
        """
        for table, key, rows in replacements:
            cols = table.column_names
            for row in rows:
                for k, v in key.items():
                    if row[cols.index(k)] != v:
                        raise ValueError(f"{table.name}: row {row} does not match key {dict(key)}")
        ph = self._ph()
        with self.connect() as con:
            self.create_tables(con)
            if self.dialect == "duckdb":
                con.execute("BEGIN TRANSACTION")
                try:
                    for table, key, rows in replacements:
                        cols = table.column_names
                        where = " AND ".join(f"{k} = {ph}" for k in key)
                        con.execute(f"DELETE FROM {table.name} WHERE {where}", list(key.values()))
                        if rows:
                            insert = (
                                f"INSERT INTO {table.name} ({', '.join(cols)}) "
                                f"VALUES ({', '.join(ph for _ in cols)})"
                            )
                            con.executemany(insert, [list(r) for r in rows])
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            else:
                with con.transaction(), con.cursor() as cur:
                    for table, key, rows in replacements:
                        where = " AND ".join(f"{k} = {ph}" for k in key)
                        cur.execute(f"DELETE FROM {table.name} WHERE {where}", list(key.values()))
                        if rows:
                            cols = ", ".join(table.column_names)
                            with cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:
                                for r in rows:
                                    copy.write_row(r)
        return sum(len(rows) for _, _, rows in replacements)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.connect() as con:
            self.create_tables(con)
            if self.dialect == "duckdb":
                return con.execute(sql, list(params)).fetchall()
            with con.cursor() as cur:
                cur.execute(sql, list(params))
                return cur.fetchall()
