"""Nightly scoring at scale: users/s, driver and executor memory, warehouse load times.

    python -m benchmarks.score                        (make bench-score: 20k, 200k and 1M users)
    python -m benchmarks.score --users 20000 --explain-users 20000

For each user count, synthetic users' sessionized events (30 days, ~13 events a user, a catalogue
of 5,000 items) are written straight to a lake with pyarrow, and ``python -m behavior_model.score``
scores the last day in a child process with the configured Spark master (``local[*]`` by
default), exactly as the nightly DAG does: example shard, model pass on the executors, profiles,
segments, drift, the DuckDB load, realised metrics, the report and the MLflow run. A sampler
records the peak RSS of the driver (the Python process), of the JVM (in local mode the JVM is
both the Spark driver and the executor) and of the Python workers that run the model. Then the
scored date is loaded into a fresh PostgreSQL database, and its 1M-row score table alone.

The champion is a default-architecture model trained once (one epoch: throughput does not depend
on how well it predicts) on 5,000 synthetic users. Scoring runs without explanations at every
size, and with them at ``--explain-users`` sizes, to show what they cost.
Results: benchmarks/results/score.json (one entry per machine) and score.md, with the targets of
issue 10 marked met or not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.dataset as ds

from benchmarks import merge_entry
from pipeline.contracts import EVENT_TYPES, SESSIONIZED_ARROW_SCHEMA

SCORE_DATE = date(2026, 3, 30)
DAYS = 30
ITEMS = 5_000
TYPE_P = (0.6, 0.15, 0.05, 0.15, 0.05)  # view, cart, wishlist, purchase, return
TARGET_USERS_PER_S = 5_000
TARGET_DRIVER_GB = 2.0
TARGET_GROWTH = 11.0  # 200k users take at most 11x the 20k time
TARGET_PG_1M_S = 60.0


def synthetic_events(
    first_user: int, users: int, rng: np.random.Generator, *, days: int = DAYS
) -> pa.Table:
    """Sessionized events of users ``first_user ..`` over ``days`` days up to SCORE_DATE: every
    user active in its last 28 days."""
    n = 1 + rng.poisson(12 * days / DAYS, users)
    user = np.repeat(np.arange(first_user, first_user + users), n)
    start = datetime.combine(SCORE_DATE - timedelta(days=days - 1), datetime.min.time())
    # Each user's last event lies in the lookback; the others spread over the whole span.
    span_s = days * 86_400
    offsets = rng.integers(0, span_s, len(user))
    last = np.cumsum(n) - 1
    offsets[last] = rng.integers(span_s - 27 * 86_400, span_s, users)
    t = np.datetime64(start, "us") + offsets.astype("timedelta64[s]").astype("timedelta64[us]")
    item = rng.integers(0, ITEMS, len(user))
    kind = rng.choice(len(EVENT_TYPES), len(user), p=TYPE_P)
    frame = pd.DataFrame(
        {
            "event_id": [f"e{u}-{i}" for u, i in zip(user, range(len(user)), strict=True)],
            "user_id": [f"u{u:08d}" for u in user],
            "event_time": pd.to_datetime(t).tz_localize("UTC"),
            "event_type": np.asarray(EVENT_TYPES)[kind],
            "item_id": [f"I{i}" for i in item],
            "category": [f"c{i % 40}" for i in item],
            "item_text": [f"item text {i % 500}" for i in item],
            "price": np.round(1 + (item % 97) * 0.5, 2),
            "quantity": 1 + rng.poisson(0.5, len(user)),
            "session_id": None,
            "is_bot": False,
        }
    )
    frame["event_date"] = frame["event_time"].dt.date
    return pa.Table.from_pandas(frame, schema=SESSIONIZED_ARROW_SCHEMA, preserve_index=False)


def write_lake(
    table_dir: Path, users: int, *, chunk: int = 100_000, seed: int = 0, days: int = DAYS
) -> int:
    """Write ``users`` synthetic users' events into ``table_dir``; returns the event count."""
    shutil.rmtree(table_dir, ignore_errors=True)
    rng = np.random.default_rng(seed)
    events = 0
    for i, first in enumerate(range(0, users, chunk)):
        part = synthetic_events(first, min(chunk, users - first), rng, days=days)
        events += part.num_rows
        ds.write_dataset(
            part,
            table_dir,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([("event_date", pa.date32())]), flavor="hive"),
            existing_data_behavior="overwrite_or_ignore",
            basename_template=f"chunk{i:04d}-{{i}}.parquet",
        )
    return events


class PeakRss:
    """Peak RSS (bytes) of a process and its children by kind, sampled every 0.05 s.

    Sampled rather than read from ``ru_maxrss``: Linux carries a parent's high-water mark into
    a forked child, so the child's own figure would start at this benchmark's."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = {"driver": 0, "jvm": 0, "python_workers": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = {"driver": self.root.memory_info().rss, "jvm": 0, "python_workers": 0}
                for child in self.root.children(recursive=True):
                    try:
                        rss = child.memory_info().rss
                        kind = "jvm" if "java" in child.name() else "python_workers"
                        now[kind] += rss
                    except psutil.Error:
                        pass
                for k, v in now.items():
                    self.peak[k] = max(self.peak[k], v)
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {k: round(v / 2**30, 3) for k, v in self.peak.items()}


def train_champion(env: dict[str, str]) -> None:
    """One epoch on 5,000 synthetic users, registered and made champion."""
    code = "from benchmarks.score import _train; _train()"  # in the child: its own data dir
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def _train() -> None:
    from behavior_model.config import TrainConfig
    from behavior_model.train import run_training
    from pipeline.context import RunContext
    from pipeline.settings import apply_process_env

    settings = apply_process_env()
    ctx = RunContext.create("sample_clickstream", SCORE_DATE, settings=settings)
    # Trained as the DAG trains: on Spark-built shards of the lake (each size then replaces it).
    write_lake(ctx.lake.sessionized_events, 5_000, seed=1, days=60)
    cfg = TrainConfig(pretrain_epochs=0, epochs=1, n_train_cutoffs=2, lightgbm_margin=None)
    result = run_training(ctx, cfg)
    if not result["promoted"]:
        from behavior_model import registry

        registry.set_champion(result["registered_model"], result["model_version"])


def score_once(env: dict[str, str], *, explain: bool) -> dict:
    cmd = [
        sys.executable, "-m", "behavior_model.score", "--source", "sample_clickstream",
        "--score-date", SCORE_DATE.isoformat(), "--json",
    ] + ([] if explain else ["--no-explanations"])  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    sampler = PeakRss(proc.pid)
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    peak = sampler.stop()
    lines = [x for x in out.splitlines() if x.startswith("{")]
    if not lines:
        raise RuntimeError(f"scoring failed ({proc.returncode}): {' '.join(cmd)}")
    # The exit status is 1 on a model-health fail: synthetic users drift from the 60-day training
    # population, which says nothing about speed. Any other failure prints no result.
    result = json.loads(lines[-1])
    return {
        "users": result["rows"],
        "explanations": explain,
        "wall_s": round(wall, 1),
        "users_per_s": round(result["rows"] / wall, 1),
        "spark_users_per_s": round(result["rows"] / result["timings"]["spark"], 1),
        "timings_s": result["timings"],
        "peak_rss_gb": peak,
    }


def fresh_database(admin: str, name: str) -> str | None:
    """URL of a new, empty database ``name`` on the server of ``admin``; None without a server."""
    import psycopg

    try:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name}")
            con.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError:
        return None
    return admin.rsplit("/", 1)[0] + f"/{name}"


def postgres_load(data_dir: Path, users: int, admin: str) -> dict:
    """Load the scored date from the lake into a fresh PostgreSQL database: every per-user table,
    then user_propensity_scores alone."""
    from behavior_model.score import warehouse_rows
    from pipeline.warehouse import Warehouse

    url = fresh_database(admin, "bench_score")
    if url is None:
        return {"skipped": f"no PostgreSQL at {admin}"}
    wh = Warehouse(url)
    scored = data_dir / "lake" / "sample_clickstream" / "scores" / f"score_date={SCORE_DATE}"
    one_segment = np.zeros(ds.dataset(scored, format="parquet").count_rows(), dtype=int)
    rows = warehouse_rows(
        scored, ("sample_clickstream", SCORE_DATE), "bench", "1", one_segment, datetime(2026, 1, 1)
    )
    day = {"source": "sample_clickstream", "score_date": SCORE_DATE}
    wh.query("SELECT 1")  # tables created outside the timing
    started = time.perf_counter()
    loaded = wh.replace_all([(table, day, r) for table, r in rows])
    all_s = time.perf_counter() - started
    started = time.perf_counter()
    scores = wh.replace_all([(rows[0][0], day, rows[0][1])])
    scores_s = time.perf_counter() - started
    return {
        "users": users,
        "insight_rows": loaded,
        "insight_tables_s": round(all_s, 1),
        "score_rows": scores,
        "score_table_s": round(scores_s, 1),
        "score_rows_per_s": round(scores / scores_s),
    }


def run(sizes: list[int], explain_sizes: list[int], work: Path, postgres: str) -> dict:
    from pipeline.settings import REPO_ROOT, child_env, process_env

    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    # The children's own data folder: the process_env of this run's folder, not the caller's.
    env = child_env(**process_env(data), PYTHONPATH=str(REPO_ROOT))
    print("training the champion ...", flush=True)
    train_champion(env)
    lake = data / "lake" / "sample_clickstream"
    runs, loads = [], []
    for users in sizes:
        started = time.perf_counter()
        events = write_lake(lake / "sessionized_events", users)
        print(f"{users:,} users, {events:,} events written in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        for explain in [False, True] if users in explain_sizes else [False]:
            r = score_once(env, explain=explain) | {"events": events, "warehouse": "duckdb"}
            print(json.dumps(r), flush=True)
            runs.append(r)
        if users == max(sizes):
            # The production warehouse: the driver streams COPY to a server instead of holding
            # an in-process DuckDB (whose load of a 1M-user date takes ~1.4 GB in the driver).
            url = fresh_database(postgres, "bench_score_warehouse")
            if url is not None:
                r = score_once(env | {"WAREHOUSE_URL": url}, explain=False)
                r |= {"events": events, "warehouse": "postgresql"}
                print(json.dumps(r), flush=True)
                runs.append(r)
        load = postgres_load(data, users, postgres)
        print(json.dumps(load), flush=True)
        loads.append(load)
    return {"scoring": runs, "postgresql": loads}


def targets(result: dict) -> list[dict]:
    plain = {
        r["users"]: r
        for r in result["scoring"]
        if not r["explanations"] and r.get("warehouse", "duckdb") == "duckdb"
    }
    out = []
    for users, r in sorted(plain.items()):
        out.append({
            "target": f">= {TARGET_USERS_PER_S:,} users/s ({users:,} users, model pass on Spark)",
            "measured": f"{r['spark_users_per_s']:,.0f} users/s",
            "met": r["spark_users_per_s"] >= TARGET_USERS_PER_S,
        })  # fmt: skip
    big = max(plain) if plain else None
    for r in result["scoring"]:
        if r["users"] == big and not r["explanations"]:
            rss = r["peak_rss_gb"]["driver"]
            out.append({
                "target": f"driver peak RSS <= {TARGET_DRIVER_GB} GB at {big:,} users "
                          f"(warehouse {r.get('warehouse', 'duckdb')})",
                "measured": f"{rss:.2f} GB", "met": rss <= TARGET_DRIVER_GB,
            })  # fmt: skip
    if 20_000 in plain and 200_000 in plain:
        ratio = plain[200_000]["wall_s"] / plain[20_000]["wall_s"]
        out.append({
            "target": f"200k users <= {TARGET_GROWTH:g}x the 20k time (end to end)",
            "measured": f"{ratio:.1f}x", "met": ratio <= TARGET_GROWTH,
        })  # fmt: skip
    for load in result["postgresql"]:
        if "score_rows" in load and load["users"] >= 1_000_000:
            out.append({
                "target": f"1M score rows into PostgreSQL <= {TARGET_PG_1M_S:g} s",
                "measured": f"{load['score_table_s']} s for {load['score_rows']:,} rows",
                "met": load["score_table_s"] <= TARGET_PG_1M_S,
            })  # fmt: skip
    return out


def markdown(entries: list[dict]) -> str:
    lines = [
        "# Scoring benchmark",
        "",
        "Command: `make bench-score` (python -m benchmarks.score)",
        "",
    ]
    for e in entries:
        lines += [f"## {e['machine']}, {e['date']}", "", f"Spark master `{e['spark_master']}`; "
                  f"torch {e['torch']} on the CPU.", "", "### Targets", "",
                  "| target | measured | met |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'NO'} |"
                  for t in e["targets"]]  # fmt: skip
        lines += ["", "### Scoring (end to end, `python -m behavior_model.score`)", "",
                  "| users | events | explanations | warehouse | wall s | users/s | Spark phase s | "
                  "Spark users/s | driver s | warehouse s | report s | driver GB | JVM GB | "
                  "Python workers GB |", "|" + "---:|" * 14]  # fmt: skip
        for r in e["scoring"]:
            t, m = r["timings_s"], r["peak_rss_gb"]
            lines.append(
                f"| {r['users']:,} | {r['events']:,} | {'yes' if r['explanations'] else 'no'} | "
                f"{r.get('warehouse', 'duckdb')} | {r['wall_s']} | {r['users_per_s']:,.0f} | {t['spark']} | "
                f"{r['spark_users_per_s']:,.0f} | {t['driver']} | {t['warehouse']} | "
                f"{t['report']} | {m['driver']} | {m['jvm']} | {m['python_workers']} |"
            )
        lines += ["", "### PostgreSQL load of the scored date (COPY, one transaction)", "",
                  "| users | insight rows | all insight tables s | score rows | score table s | "
                  "rows/s |", "|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for p in e["postgresql"]:
            if "skipped" in p:
                lines.append(f"| skipped: {p['skipped']} |||||")
            else:
                lines.append(
                    f"| {p['users']:,} | {p['insight_rows']:,} | {p['insight_tables_s']} | "
                    f"{p['score_rows']:,} | {p['score_table_s']} | {p['score_rows_per_s']:,} |"
                )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import torch

    from pipeline.settings import REPO_ROOT, Settings

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    p.add_argument("--explain-users", type=int, nargs="*", default=[20_000])
    p.add_argument("--work", type=Path, default=REPO_ROOT / "data" / "bench-score")
    p.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL of the PostgreSQL server the load is timed on",
    )
    a = p.parse_args(argv)
    result = run(a.users, a.explain_users, a.work, a.postgres)
    entry = {
        "machine": f"{platform.node()} ({os.cpu_count()} cores)",
        "date": date.today().isoformat(),  # when it was measured: a label, decides nothing
        "torch": torch.__version__,
        "spark_master": Settings.from_env().spark_master,
        **result,
    }
    entry["targets"] = targets(result)
    print(merge_entry("score", entry, markdown))


if __name__ == "__main__":
    main()
