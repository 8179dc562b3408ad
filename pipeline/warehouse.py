"""The warehouse analysts query: DuckDB file by default, PostgreSQL in production.

One URL (``WAREHOUSE_URL``) picks it: ``duckdb:///abs/path/warehouse.duckdb`` or
``postgresql://user@host:5432/db``. Tables are declared once, in ``pipeline/tables.py``, with
comments on every column so ``\\d+`` in psql or ``duckdb_columns()`` explains them; the analyst
views, the look-alike function and the read-only role come from ``warehouse init``
(``pipeline/analytics.py``). Writes replace one key (a score date, a
source and run date) in a single transaction: a rerun never duplicates rows and a reader never sees
a half-written date.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.tables import TABLES, Table


class SchemaMismatchError(RuntimeError):
    """A table in the warehouse has other columns than pipeline/tables.py declares."""


class ArrowRows:
    """Rows as Arrow tables with the table's column names, produced on demand (streamed from
    Parquet, say), so a date of a million users never sits in memory as Python tuples."""

    def __init__(self, chunks: Callable[[], Iterable[pa.Table]]) -> None:
        self.chunks = chunks


# Rows for one table: (table, key the rows replace, rows in the table's column order or ArrowRows).
Replacement = tuple[Table, Mapping[str, Any], "Sequence[Sequence[Any]] | ArrowRows"]


def _checked_chunks(table: Table, key: Mapping[str, Any], rows: ArrowRows) -> Iterator[pa.Table]:
    import pyarrow.compute as pc

    for chunk in rows.chunks():
        missing = set(table.column_names) - set(chunk.column_names)
        if missing:
            raise ValueError(f"{table.name}: the rows have no column(s) {sorted(missing)}")
        chunk = chunk.select(table.column_names)
        for k, v in key.items():
            if chunk.num_rows and not pc.all(pc.equal(chunk[k], pa.scalar(v))).as_py():
                raise ValueError(f"{table.name}: rows do not match key {dict(key)}")
        yield chunk


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
        self._checked = False

    @property
    def duckdb_path(self) -> Path:
        path = Path(self.url.removeprefix("duckdb:///"))
        return path if path.is_absolute() else Path("/") / path

    @contextmanager
    def connect(self) -> Iterator[Any]:
        if self.dialect == "duckdb":
            import fcntl

            import duckdb

            path = self.duckdb_path
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

    def _fetch(self, con: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        if self.dialect == "duckdb":
            return con.execute(sql, list(params)).fetchall()
        with con.cursor() as cur:
            # One placeholder style for callers on both databases: "?" (psycopg's is "%s").
            cur.execute(sql.replace("?", "%s") if params else sql, list(params))
            return cur.fetchall()

    def base_schema(self, con: Any) -> str:
        """The schema the pipeline's tables live in (main in DuckDB, current_schema() in PG)."""
        return self._fetch(con, "SELECT current_schema()")[0][0]

    def existing_columns(self, con: Any) -> dict[str, list[str]]:
        rows = self._fetch(
            con,
            "SELECT table_name, column_name FROM information_schema.columns "
            f"WHERE table_schema = {self._ph()} ORDER BY table_name, ordinal_position",
            [self.base_schema(con)],
        )
        out: dict[str, list[str]] = {}
        for table, column in rows:
            out.setdefault(table, []).append(column)
        return out

    def create_tables(self, con: Any) -> None:
        """Create the missing tables (with their comments); refuse a table of another shape.

        Runs once per Warehouse object. Existing tables are only read, so concurrent tasks do not
        rewrite each other's comments; on PostgreSQL an advisory lock serialises the first run.
        """
        if self._checked:
            return
        if self.dialect == "postgresql":
            with con.transaction():
                con.execute("SELECT pg_advisory_xact_lock(hashtext('pipeline.create_tables'))")
                self._create_missing(con)
        else:
            self._create_missing(con)
        self._checked = True

    def _create_missing(self, con: Any) -> None:
        existing = self.existing_columns(con)
        for table in TABLES:
            have = existing.get(table.name)
            if have is None:
                for stmt in table.ddl():
                    con.execute(stmt)
            elif have != table.column_names:
                raise SchemaMismatchError(
                    f"{self.url}: table {table.name} has columns {have}, but pipeline/tables.py "
                    f"declares {table.column_names}. It was made by an older version: migrate it "
                    f"(or, for a demo warehouse, `make clean` and rerun)."
                )

    def replace(self, table: Table, key: Mapping[str, Any], rows: Sequence[Sequence[Any]]) -> int:
        """In one transaction, delete the rows matching ``key`` and insert ``rows``."""
        return self.replace_all([(table, key, rows)])

    def replace_all(self, replacements: Sequence[Replacement]) -> int:
        """In one transaction, for each (table, key, rows): delete the key's rows, insert ``rows``.

        ``rows`` hold values in ``table.columns`` order, or are ``ArrowRows``; every row must match
        its key. A reader sees all the replacements or none of them. DuckDB loads the rows from
        Arrow tables, PostgreSQL with COPY. Returns the number of rows loaded.
        """
        for table, key, rows in replacements:
            cols = table.column_names
            unknown = set(key) - set(cols)
            if unknown:
                raise ValueError(f"{table.name}: key columns {sorted(unknown)} do not exist")
            if isinstance(rows, ArrowRows):
                continue  # checked chunk by chunk while loading
            for row in rows:
                if len(row) != len(cols):
                    raise ValueError(
                        f"{table.name}: row {row} has {len(row)} values, not {len(cols)}"
                    )
                for k, v in key.items():
                    if row[cols.index(k)] != v:
                        raise ValueError(f"{table.name}: row {row} does not match key {dict(key)}")
        ph = self._ph()
        loaded = 0
        with self.connect() as con:
            self.create_tables(con)
            if self.dialect == "duckdb":
                con.execute("BEGIN TRANSACTION")
                try:
                    for table, key, rows in replacements:
                        where = " AND ".join(f"{k} = {ph}" for k in key)
                        con.execute(f"DELETE FROM {table.name} WHERE {where}", list(key.values()))
                        cols = ", ".join(table.column_names)
                        for chunk in self._chunks(table, key, rows):
                            loaded += chunk.num_rows
                            con.register("_staging", chunk)
                            con.execute(
                                f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM _staging"
                            )
                            con.unregister("_staging")
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            else:
                with con.transaction(), con.cursor() as cur:
                    for table, key, rows in replacements:
                        where = " AND ".join(f"{k} = {ph}" for k in key)
                        cur.execute(f"DELETE FROM {table.name} WHERE {where}", list(key.values()))
                        cols = ", ".join(table.column_names)
                        with cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:
                            for chunk in self._chunks(table, key, rows):
                                loaded += chunk.num_rows
                                for r in zip(*(c.to_pylist() for c in chunk.columns), strict=True):
                                    copy.write_row(r)
        return loaded

    @staticmethod
    def _chunks(table: Table, key: Mapping[str, Any], rows) -> Iterator[pa.Table]:
        if isinstance(rows, ArrowRows):
            yield from _checked_chunks(table, key, rows)
        elif rows:
            cols = table.column_names
            yield pa.table({c: pa.array([r[i] for r in rows]) for i, c in enumerate(cols)})

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of ``sql``; placeholders are ``?`` on both databases."""
        with self.connect() as con:
            self.create_tables(con)
            return self._fetch(con, sql, params)

    def init(
        self, *, analyst_role: str | None = None, analyst_password: str | None = None
    ) -> list[str]:
        """``warehouse init``: tables, the analytics schema and views, the look-alike function and,
        on PostgreSQL, the read-only analyst role. Idempotent. Returns what it did, in words."""
        from pipeline import analytics

        with self.connect() as con:
            self.create_tables(con)
            done = [f"tables: {', '.join(t.name for t in TABLES)}"]
            done += analytics.create_views(con, self.dialect, self.base_schema(con))
            if self.dialect == "postgresql":
                done += analytics.create_analyst_role(
                    con, self.base_schema(con), analyst_role, analyst_password
                )
            else:
                done.append(
                    "DuckDB has no roles: analysts open the file read-only "
                    "(duckdb.connect(path, read_only=True) or `duckdb -readonly`)"
                )
        return done


def main(argv: list[str] | None = None) -> None:
    """``warehouse init``: create or update the warehouse's tables, analyst views and role."""
    from pipeline.settings import apply_process_env

    p = argparse.ArgumentParser(prog="warehouse", description=main.__doc__)
    p.add_argument("command", choices=["init"])
    p.parse_args(argv)
    s = apply_process_env()
    wh = Warehouse(s.warehouse_url)
    for line in wh.init(
        analyst_role=s.warehouse_analyst_role, analyst_password=s.warehouse_analyst_password
    ):
        print(line)


if __name__ == "__main__":
    main()
