"""Drive the README's backfill section against a real ``airflow standalone`` and check the result.

    make demo && make check-backfill        (python -m dags.backfill_check)

Starts ``airflow standalone`` on the demo's AIRFLOW_HOME, runs the README's backfill command for
dates the demo already ran (``--reprocess-behavior completed``), follows the runs through the REST
API (``POST /auth/token``, ``/api/v2/dags/.../dagRuns``) and then checks what a data engineer
would: every backfilled date's runs succeeded, its lake partition and run summary are there, and
``nightly_scoring`` scored every one of those dates (not only the latest). Prints what it saw and
exits non-zero on any miss. Not a DAG file (``dags/.airflowignore``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

from pipeline.settings import apply_process_env, child_env

# The README's command, verbatim but for the port (README.md, "Airflow UI").
FROM, TO = date(2026, 2, 27), date(2026, 3, 1)
BACKFILL = (
    f"airflow backfill create --dag-id clickstream_daily --from-date {FROM} --to-date {TO} "
    "--reprocess-behavior completed --max-active-runs 3"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base: str) -> None:
        self.base, self.token = base, None

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"{}")

    def wait_until_up(self, proc: subprocess.Popen, seconds: int = 180) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"airflow standalone exited with {proc.returncode}")
            try:
                self.call("GET", "/api/v2/monitor/health")
                return
            except OSError:
                time.sleep(2)
        raise SystemExit(f"airflow standalone did not answer within {seconds}s")

    def login(self, airflow_home: Path) -> None:
        users = json.loads(
            (airflow_home / "simple_auth_manager_passwords.json.generated").read_text()
        )
        user, password = next(iter(users.items()))
        self.token = self.call("POST", "/auth/token", {"username": user, "password": password})[
            "access_token"
        ]


def _runs(api: Api, dag_id: str) -> list[dict]:
    return api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=200&order_by=-run_after")[
        "dag_runs"
    ]


def main() -> None:
    settings = apply_process_env()
    from pipeline.warehouse import Warehouse

    wh = Warehouse(settings.warehouse_url)
    if not settings.source_lake("sample_clickstream").exists():
        raise SystemExit("no demo lake: run `make demo` first")
    port = _free_port()
    # The api-server and the execution API the task workers call must agree on the port.
    env = child_env(
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
    )
    log = open(settings.airflow_home / "backfill_check.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        ["airflow", "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    api = Api(f"http://127.0.0.1:{port}")
    failures = []
    try:
        api.wait_until_up(proc)
        api.login(settings.airflow_home)
        for dag_id in ("clickstream_daily", "nightly_scoring"):
            deadline = time.time() + 120
            while True:
                try:
                    dag = api.call("GET", f"/api/v2/dags/{dag_id}")
                    break
                except OSError:
                    if time.time() > deadline:
                        raise SystemExit(f"{dag_id} never appeared in the API") from None
                    time.sleep(3)
            print(f"{dag_id}: paused={dag['is_paused']}")
            if dag["is_paused"]:
                failures.append(f"{dag_id} is paused: a backfill would sit queued")
        # A backfill left running by an interrupted check would refuse the new one.
        for b in api.call("GET", "/api/v2/backfills?dag_id=clickstream_daily")["backfills"]:
            if not b.get("completed_at"):
                api.call("PUT", f"/api/v2/backfills/{b['id']}/cancel")
                print(f"cancelled backfill {b['id']} left from an earlier run")
        t0 = time.time()
        for attempt in range(1, 6):
            # SQLite (the local metadata DB) is locked for a moment while the scheduler writes.
            done = subprocess.run(BACKFILL.split(), env=env, capture_output=True, text=True)
            if done.returncode == 0 or "database is locked" not in done.stderr:
                break
            print(f"attempt {attempt}: the SQLite metadata DB was locked; trying again")
            time.sleep(10)
        print(f"$ {BACKFILL}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
        if done.returncode != 0 and attempt > 1 and "AlreadyRunningBackfill" in done.stderr:
            # A "locked" attempt can fail after its backfill was committed: that one is ours.
            running = [
                b
                for b in api.call("GET", "/api/v2/backfills?dag_id=clickstream_daily")["backfills"]
                if not b.get("completed_at") and b["from_date"][:10] == FROM.isoformat()
            ]
            if running:
                print(
                    f"backfill {running[0]['id']} was created by the locked attempt: following it"
                )
                done = subprocess.CompletedProcess(done.args, 0, done.stdout, done.stderr)
        if done.returncode != 0:
            raise SystemExit("the README's backfill command failed")
        days = [(FROM + timedelta(days=k)).isoformat() for k in range((TO - FROM).days + 1)]
        deadline = time.time() + 1500
        while time.time() < deadline:
            runs = [r for r in _runs(api, "clickstream_daily") if r["run_type"] == "backfill"]
            states = {r["logical_date"][:10]: r["state"] for r in runs if r["logical_date"]}
            if all(states.get(d) in ("success", "failed") for d in days):
                break
            time.sleep(10)
        print(f"clickstream_daily backfill runs: {states} ({time.time() - t0:.0f}s)")
        failures += [
            f"clickstream_daily {d}: {states.get(d)}" for d in days if states.get(d) != "success"
        ]
        # Scoring follows the asset events; wait until its runs settle, then ask the warehouse.
        deadline = time.time() + 900
        while time.time() < deadline:
            scoring = _runs(api, "nightly_scoring")
            recent = [r for r in scoring if (r.get("run_after") or "") >= runs[-1]["run_after"]]
            if recent and all(r["state"] in ("success", "failed") for r in recent):
                scored = {
                    str(r[0])
                    for r in wh.query(
                        "SELECT DISTINCT score_date FROM user_propensity_scores "
                        "WHERE score_date BETWEEN ? AND ? AND scored_at >= ?",
                        [FROM, TO, recent[-1]["start_date"][:19].replace("T", " ")],
                    )
                }
                if set(days) <= scored:
                    break
            time.sleep(10)
        scored = {
            str(r[0])
            for r in wh.query(
                "SELECT DISTINCT score_date FROM user_propensity_scores WHERE score_date BETWEEN ? AND ?",
                [FROM, TO],
            )
        }
        print(
            f"nightly_scoring runs since the backfill: {[r['state'] for r in recent]}; scored dates: {sorted(scored)}"
        )
        failures += [f"{d} not scored" for d in days if d not in scored]
        lake = settings.source_lake("sample_clickstream")
        for d in days:
            if not (lake / "sessionized_events" / f"event_date={d}").is_dir():
                failures.append(f"no sessionized_events partition for {d}")
        summaries = wh.query(
            "SELECT count(*), sum(unaccounted_rows) FROM etl_run_summary "
            "WHERE source = 'sample_clickstream' AND run_date BETWEEN ? AND ?",
            [FROM, TO],
        )[0]
        print(
            f"etl_run_summary rows for the range: {summaries[0]}, unaccounted rows: {summaries[1]}"
        )
        if summaries != (len(days), 0):
            failures.append(f"etl_run_summary for the range: {summaries}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    print(
        "OK: the README's backfill works as printed"
        if not failures
        else "FAILED:\n- " + "\n- ".join(failures)
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
