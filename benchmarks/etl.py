"""ETL benchmark: clean + sessionize N generated events with Spark, and the same in DuckDB SQL.

    python -m benchmarks.etl --events 1000000 10000000      (make bench-etl)

For each size: generate raw JSON lines with DuckDB (one folder per day, 1% exact duplicate lines,
0.2% rows without a user, 0.1% unknown event types), then, each engine in its own process:
- Spark: the pipeline's own code (``jobs.ingest.ingest_range`` then ``jobs.sessionize.sessionize_range``)
  in one application; start-up timed separately;
- DuckDB: a single-machine reference in SQL for the same pipeline on this generated data (parse
  every line as JSON text, dedup keeping the first occurrence, 30-minute sessions with hashed ids,
  Parquet partitioned by event_date, quarantine and counts). It checks only the 6 of the 13
  quarantine reasons that can occur in the generated data (malformed, missing user or item, bad
  timestamp, unknown event type, negative price) and none of the late-event window, bot flags or
  PII masking; both engines produce the same counts here, but DuckDB does less work per row, so the
  ratio flatters DuckDB.
Peak memory is the process tree's peak RSS (the JVM included), sampled every 0.2 s.
Results: benchmarks/results/etl.json and etl.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import psutil

from pipeline.settings import Settings

RESULTS = Path(__file__).parent / "results"
START = date(2026, 1, 1)
DAYS = 30


def generate(root: Path, n: int) -> None:
    import duckdb

    if (root / "_done").exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    users = max(1000, n // 200)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"""
        COPY (
          WITH base AS (
            SELECT i, CASE WHEN i % 100 = 99 THEN i - 1 ELSE i END AS k FROM range({n}) t(i)
          )
          SELECT
            'e' || lpad(CAST(k AS VARCHAR), 10, '0') AS event_id,
            CASE WHEN k % 500 = 7 THEN NULL ELSE 'u' || CAST(hash(k) % {users} AS VARCHAR) END AS user_id,
            strftime(TIMESTAMP '{START}' + to_seconds(CAST(k * {DAYS * 86400 // max(n, 1)} + hash(k * 7) % 600 AS BIGINT)),
                     '%Y-%m-%dT%H:%M:%S') || 'Z' AS ts,
            CASE WHEN k % 1000 = 13 THEN 'click'
                 ELSE ['page_view', 'page_view', 'page_view', 'add_to_cart', 'order', 'add_to_wishlist', 'refund'][1 + CAST(hash(k * 3) % 7 AS INT)] END AS type,
            'I' || CAST(hash(k * 5) % 5000 AS VARCHAR) AS item_id,
            ['kitchen', 'garden', 'toys', 'stationery', 'home_decor', 'bags', 'christmas', 'party'][1 + CAST(hash(k * 11) % 8 AS INT)] AS category,
            'ITEM ' || CAST(hash(k * 5) % 5000 AS VARCHAR) || ' DESCRIPTION' AS item_text,
            round(1 + (hash(k * 13) % 5000) / 100.0, 2) AS price,
            1 + CAST(hash(k * 17) % 3 AS INT) AS qty,
            strftime(TIMESTAMP '{START}' + to_seconds(CAST(k * {DAYS * 86400 // max(n, 1)} + hash(k * 7) % 600 AS BIGINT)), '%Y-%m-%d') AS date
          FROM base ORDER BY i
        ) TO '{root}' (FORMAT JSON, PARTITION_BY (date))
    """)
    (root / "_done").write_text(str(n))


def run_spark(raw: Path, work: Path) -> dict:
    from jobs.ingest import ingest_range
    from jobs.sessionize import sessionize_range
    from jobs.spark import get_spark
    from pipeline.lake import Lake
    from pipeline.settings import Settings
    from pipeline.source_mapping import load_mapping

    mapping = load_mapping("sample_clickstream")
    lake = Lake(work)
    t0 = time.time()
    spark = get_spark(Settings.from_env(), "bench-etl")
    spark.range(1).count()
    startup = time.time() - t0
    first, last = START, START + timedelta(days=DAYS)
    t1 = time.time()
    summaries = ingest_range(
        spark, mapping=mapping, path=raw, first=first, last=last, lake=lake
    ).summaries
    t2 = time.time()
    sessionize_range(
        spark,
        lake=lake,
        source=mapping.name,
        first=first,
        last=last,
        idle_gap=timedelta(minutes=30),
        bot_events_per_minute=60,
    )
    t3 = time.time()
    from pyspark.sql import functions as F

    from jobs.clean import classify
    from jobs.raw_files import inspect, split_by_arrival

    # As the load reads them: each day folder's files with their arrival day.
    by_day, undated = split_by_arrival(raw, mapping)
    files = [inspect(p, mapping, d) for d, ps in by_day.items() for p in ps]
    files += [inspect(p, mapping, None) for p in undated]
    from datetime import UTC, datetime
    from datetime import time as dtime

    plan = classify(
        spark, files, mapping=mapping,
        window_start=datetime.combine(first, dtime(), tzinfo=UTC),
        window_end=datetime.combine(last + timedelta(days=1), dtime(), tzinfo=UTC),
        default_run_date=last,
    ).filter(F.col("reason").isNull())._jdf.queryExecution().executedPlan().toString()  # fmt: skip
    return {
        "startup_s": startup,
        "clean_s": t2 - t1,
        "sessionize_s": t3 - t2,
        "total_s": t3 - t1,
        "raw_rows": sum(s.raw_rows for s in summaries),
        "clean_rows": sum(s.clean_rows for s in summaries),
        "quarantined_rows": sum(s.quarantined_rows for s in summaries),
        "duplicate_rows": sum(s.duplicate_rows for s in summaries),
        "physical_plan_classify": plan,
    }


DUCKDB_SQL = """
CREATE TEMP TABLE classified AS
WITH lines AS (
  SELECT line, filename, row_number() OVER (PARTITION BY filename) AS line_number
  FROM read_csv('{raw}/*/*.json', columns = {{'line': 'VARCHAR'}}, delim = '\\x01', quote = '',
                escape = '', header = false, filename = true)
), parsed AS (
  SELECT line, filename, line_number,
         json_extract_string(line, ['event_id', 'user_id', 'ts', 'type', 'item_id', 'category',
                                    'item_text', 'price', 'qty']) AS f,
         json_valid(line) AS ok
  FROM lines
), norm AS (
  SELECT filename, line_number, line, ok, f[1] AS event_id, nullif(trim(f[2]), '') AS user_id,
         TRY_CAST(f[3] AS TIMESTAMPTZ) AS event_time,
         CASE f[4] WHEN 'page_view' THEN 'view' WHEN 'add_to_cart' THEN 'cart'
                   WHEN 'add_to_wishlist' THEN 'wishlist' WHEN 'order' THEN 'purchase'
                   WHEN 'refund' THEN 'return' END AS event_type,
         f[5] AS item_id, f[6] AS category, f[7] AS item_text,
         TRY_CAST(f[8] AS DOUBLE) AS price, TRY_CAST(TRY_CAST(f[9] AS DOUBLE) AS BIGINT) AS quantity
  FROM parsed
)
SELECT *,
  CASE WHEN NOT ok THEN 'malformed' WHEN user_id IS NULL THEN 'missing_user_id'
       WHEN item_id IS NULL THEN 'missing_item_id' WHEN event_time IS NULL THEN 'bad_timestamp'
       WHEN event_type IS NULL THEN 'unknown_event_type' WHEN price < 0 THEN 'negative_price' END AS reason
FROM norm;

CREATE TEMP TABLE deduped AS
SELECT *, CASE WHEN reason IS NULL THEN row_number() OVER (PARTITION BY event_id, reason IS NULL
          ORDER BY filename, line_number) END AS rn
FROM classified;

COPY (SELECT event_id, user_id, event_time, event_type, item_id, category, item_text, price, quantity,
             CAST(event_time AS DATE) AS event_date
      FROM deduped WHERE reason IS NULL AND rn = 1)
TO '{out}/events' (FORMAT PARQUET, PARTITION_BY (event_date), OVERWRITE_OR_IGNORE);

COPY (SELECT filename AS source_file, line_number, line AS raw_line, reason FROM deduped WHERE reason IS NOT NULL)
TO '{out}/quarantine.parquet' (FORMAT PARQUET);

CREATE TEMP TABLE counts AS
SELECT coalesce(reason, CASE WHEN rn > 1 THEN '_duplicate' ELSE '_clean' END) AS outcome, count(*) AS n
FROM deduped GROUP BY ALL;

COPY (
  WITH e AS (SELECT * FROM read_parquet('{out}/events/*/*.parquet', hive_partitioning = true)),
  g AS (SELECT *, CASE WHEN lag(event_time) OVER w IS NULL
                        OR event_time - lag(event_time) OVER w > INTERVAL 30 MINUTE THEN 1 ELSE 0 END AS new
        FROM e WINDOW w AS (PARTITION BY user_id ORDER BY event_time, event_id)),
  n AS (SELECT *, sum(new) OVER (PARTITION BY user_id ORDER BY event_time, event_id) AS s FROM g)
  SELECT * EXCLUDE (new, s),
         substr(sha256(user_id || '|' || strftime(min(event_time) OVER (PARTITION BY user_id, s), '%Y-%m-%dT%H:%M:%S.%f')), 1, 24) AS session_id
  FROM n
) TO '{out}/sessionized_events' (FORMAT PARQUET, PARTITION_BY (event_date), OVERWRITE_OR_IGNORE);
"""


def run_duckdb(raw: Path, work: Path) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"SET temp_directory = '{work}/tmp'")
    t0 = time.time()
    for stmt in DUCKDB_SQL.format(raw=raw, out=work).split(";\n"):
        if stmt.strip():
            con.execute(stmt)
    total = time.time() - t0
    counts = dict(con.execute("SELECT outcome, n FROM counts").fetchall())
    return {
        "total_s": total,
        "raw_rows": sum(counts.values()),
        "clean_rows": counts.get("_clean", 0),
        "quarantined_rows": sum(v for k, v in counts.items() if not k.startswith("_")),
        "duplicate_rows": counts.get("_duplicate", 0),
    }


def measured(engine: str, raw: Path, work: Path) -> dict:
    """Run one engine in a child process; return its result with the tree's peak RSS."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cmd = [sys.executable, "-m", "benchmarks.etl", "--child", engine, str(raw), str(work)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        p = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = p.memory_info().rss + sum(
                    c.memory_info().rss for c in p.children(recursive=True)
                )
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, _ = proc.communicate()
    done.set()
    t.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} benchmark failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    return result | {"peak_rss_mib": round(peak / 2**20)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--workdir", type=Path, default=Settings.from_env().data_dir / "bench")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        engine, raw, work = a.child[0], Path(a.child[1]), Path(a.child[2])
        result = run_spark(raw, work) if engine == "spark" else run_duckdb(raw, work)
        print(json.dumps(result))
        return
    runs = []
    for n in a.events:
        raw = a.workdir / f"raw_{n}"
        t0 = time.time()
        generate(raw, n)
        print(f"{n:,} events generated in {time.time() - t0:.0f}s", flush=True)
        duck = measured("duckdb", raw, a.workdir / "out_duckdb")
        print(f"  duckdb {duck['total_s']:.1f}s", flush=True)
        spark = measured("spark", raw, a.workdir / "out_spark")
        print(f"  spark  {spark['total_s']:.1f}s (+{spark['startup_s']:.1f}s start-up)", flush=True)
        assert spark["raw_rows"] == duck["raw_rows"] == n, (spark, duck)
        assert (
            spark["clean_rows"] == duck["clean_rows"]
            and spark["duplicate_rows"] == duck["duplicate_rows"]
        )
        runs.append(
            {
                "events": n,
                "spark": spark | {"events_per_s": round(n / spark["total_s"])},
                "duckdb": duck | {"events_per_s": round(n / duck["total_s"])},
                "spark_over_duckdb": round(spark["total_s"] / duck["total_s"], 2),
            }
        )
        shutil.rmtree(a.workdir / "out_spark", ignore_errors=True)
        shutil.rmtree(a.workdir / "out_duckdb", ignore_errors=True)
    report = {
        "command": "make bench-etl  (python -m benchmarks.etl --events "
        + " ".join(map(str, a.events))
        + ")",
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, {round(psutil.virtual_memory().total / 2**30)} GiB",
        "date": time.strftime("%Y-%m-%d"),
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "etl.json").write_text(json.dumps(report, indent=2))
    (RESULTS / "etl.md").write_text(markdown(report))
    print((RESULTS / "etl.md").read_text())


def markdown(report: dict) -> str:
    lines = [
        "# ETL benchmark: clean + sessionize",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']}; measured {report['date']}.",
        "",
        "| events | engine | start-up s | clean s | sessionize s | total s (no start-up) | events/s | peak RSS MiB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        s, d = r["spark"], r["duckdb"]
        lines.append(
            f"| {r['events']:,} | Spark | {s['startup_s']:.1f} | {s['clean_s']:.1f} | {s['sessionize_s']:.1f} | {s['total_s']:.1f} | {s['events_per_s']:,} | {s['peak_rss_mib']:,} |"
        )
        lines.append(
            f"| {r['events']:,} | DuckDB | - | - | - | {d['total_s']:.1f} | {d['events_per_s']:,} | {d['peak_rss_mib']:,} |"
        )
    lines += [
        "",
        "Spark time / DuckDB time (start-up excluded): "
        + ", ".join(f"{r['events']:,}: {r['spark_over_duckdb']}x" for r in report["runs"]),
        "",
    ]
    last = report["runs"][-1]["spark"]
    lines += [
        "## Spark physical plan of the classify step (largest run)",
        "",
        "```",
        last["physical_plan_classify"][:6000],
        "```",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
