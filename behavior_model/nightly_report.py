"""The nightly report: one self-contained HTML page per source and score date, read back from the
warehouse (so it shows what analysts will query, nothing else).

    python -m behavior_model.nightly_report --source sample_clickstream --score-date 2026-03-01

Written to ``data/reports/<score_date>/<source>.html`` (charts inlined, no network needed) and
logged to MLflow with the scoring run. Sections: score distributions, segments, drift, realised
performance over time, biggest movers since the previous score date.
"""

from __future__ import annotations

import argparse
import base64
import io
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on workers

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from jinja2 import Environment  # noqa: E402

from behavior_model.monitoring import worst_status  # noqa: E402
from pipeline.warehouse import Warehouse  # noqa: E402

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ source }} {{ score_date }}: nightly scores</title>
<style>
 body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
 h1 { margin-bottom: .2rem } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd }
 .sub { color: #666 } table { border-collapse: collapse; margin: .6rem 0; font-size: 14px }
 td, th { border-bottom: 1px solid #eee; padding: .25rem .6rem; text-align: left }
 td.n { text-align: right; font-variant-numeric: tabular-nums }
 .badge { padding: .1rem .5rem; border-radius: .6rem; color: #fff; font-weight: 600 }
 .ok { background: #2e7d32 } .warn { background: #ef8f00 } .fail { background: #c62828 }
 .no_reference { background: #777 } .ok_trend { background: #8bc34a } .note { background: #f6f6f6; padding: .5rem .8rem }
 img { max-width: 100% }
</style></head><body>
<h1>{{ source }}: nightly scores for {{ score_date }}</h1>
<p class="sub">{{ users }} users scored by {{ model_name }} version {{ model_version }}.
 Model health: <span class="badge {{ drift_status }}">{{ drift_status }}</span>
 {% if drifting %} drifting: {{ drifting }}{% endif %}</p>

<h2>Scores</h2>
<p>Mean churn probability {{ "%.3f"|format(mean_churn) }}, mean purchase probability
 {{ "%.3f"|format(mean_purchase) }}.</p>
<img alt="score distributions" src="data:image/png;base64,{{ charts.scores }}">

<h2>Segments</h2>
<p class="sub">k-means on the behaviour vectors; {{ k_choice }}.</p>
<img alt="segment sizes" src="data:image/png;base64,{{ charts.segments }}">
<table><tr><th>segment</th><th>users</th><th>share</th><th>mean churn</th><th>mean purchase</th>
<th>description</th></tr>
{% for s in segments %}<tr><td class="n">{{ s.segment_id }}</td><td class="n">{{ s.users }}</td>
<td class="n">{{ "%.1f%%"|format(100 * s.share) }}</td><td class="n">{{ s.churn }}</td>
<td class="n">{{ s.purchase }}</td><td>{{ s.description }}</td></tr>
{% endfor %}</table>

<h2>Drift against the champion's training reference</h2>
<p class="sub">Population stability index per input and score; warn at {{ warn }}, fail at
 {{ fail }}.</p>
<img alt="drift" src="data:image/png;base64,{{ charts.drift }}">
{% if drift_rows %}<table><tr><th>name</th><th>kind</th><th>PSI</th><th>status</th>
<th>message</th></tr>
{% for d in drift_rows %}<tr><td>{{ d.name }}</td><td>{{ d.kind }}</td><td class="n">{{ d.psi }}</td>
<td><span class="badge {{ d.status }}">{{ d.status }}</span></td><td>{{ d.message }}</td></tr>
{% endfor %}</table>{% else %}<p>Every input and score is stable.</p>{% endif %}

<h2>Realised performance over time</h2>
<p class="sub">Each score date's stored scores against what happened once its label window had
passed (pending until then). {{ performance_note }}</p>
{% if charts.performance %}<img alt="realised performance" src="data:image/png;base64,{{ charts.performance }}">{% endif %}
<table><tr><th>score date</th><th>churn ROC-AUC</th><th>churn ECE</th><th>churned</th>
<th>predicted</th><th>purchase ROC-AUC</th><th>purchase ECE</th><th>purchased</th><th>predicted</th></tr>
{% for p in performance %}<tr><td>{{ p.score_date }}</td>
<td class="n">{{ p.churn_roc_auc }}</td><td class="n">{{ p.churn_ece }}</td>
<td class="n">{{ p.churn_positive_rate }}</td><td class="n">{{ p.churn_mean_probability }}</td>
<td class="n">{{ p.purchase_roc_auc }}</td><td class="n">{{ p.purchase_ece }}</td>
<td class="n">{{ p.purchase_positive_rate }}</td><td class="n">{{ p.purchase_mean_probability }}</td></tr>
{% endfor %}</table>

<h2>Biggest movers since {{ previous_date or "the previous score date" }}</h2>
{% if movers %}<table><tr><th>user</th><th>churn</th><th>change</th><th>purchase</th>
<th>change</th><th>top churn reason</th></tr>
{% for m in movers %}<tr><td>{{ m.user_id }}</td><td class="n">{{ m.churn }}</td>
<td class="n">{{ m.churn_change }}</td><td class="n">{{ m.purchase }}</td>
<td class="n">{{ m.purchase_change }}</td><td>{{ m.reason }}</td></tr>
{% endfor %}</table>{% else %}<p class="note">No earlier score date for this source: nothing to
compare with yet.</p>{% endif %}
</body></html>
"""


PERFORMANCE_ROWS = 14


def performance_rows(performance: pd.DataFrame, *, last: int) -> list[dict]:
    """One row per score date (newest first), churn and purchase side by side; "pending" where
    the labels are not complete, "undefined" where every user had the same outcome."""
    rows = []
    for day, g in sorted(performance.groupby("score_date"), key=lambda x: x[0], reverse=True)[
        :last
    ]:
        row: dict = {"score_date": day}
        for r in g.to_dict("records"):
            label = r["label"]
            pending = r["status"] == "pending"
            row[f"{label}_roc_auc"] = "pending" if pending else _fmt(r["roc_auc"]) or "undefined"
            row[f"{label}_ece"] = _fmt(r["ece"])
            row[f"{label}_positive_rate"] = _fmt(r["positive_rate"])
            row[f"{label}_mean_probability"] = _fmt(r["mean_probability"])
        rows.append(row)
    return rows


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _fmt(v, spec: str = ".3f") -> str:
    return "" if v is None or pd.isna(v) else format(v, spec)


def _frame(wh: Warehouse, sql: str, params: list, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(wh.query(sql, params), columns=columns)


BINS = 40


def score_histogram(wh: Warehouse, column: str, key: list) -> np.ndarray:
    """Users per probability bin of width 1/BINS (1.0 falls in the last bin), counted in SQL."""
    rows = wh.query(
        f"SELECT least(CAST(floor({column} * {BINS}) AS INTEGER), {BINS - 1}), count(*) "
        "FROM user_propensity_scores WHERE source = ? AND score_date = ? GROUP BY 1",
        key,
    )
    counts = np.zeros(BINS)
    for b, n in rows:
        counts[int(b)] = n
    return counts


def render(wh: Warehouse, source: str, score_date: date, *, warn: float, fail: float) -> str:
    """The page for one source and score date, from the warehouse's tables."""
    key = [source, score_date]
    # Aggregates only: a date of a million users never travels to this process row by row.
    users, mean_churn, mean_purchase, model_name, model_version = wh.query(
        "SELECT count(*), avg(churn_probability), avg(purchase_probability), min(model_name), "
        "min(model_version) FROM user_propensity_scores WHERE source = ? AND score_date = ?",
        key,
    )[0]
    if not users:
        raise LookupError(f"no scores for {source} on {score_date} in the warehouse")
    histograms = {
        col: score_histogram(wh, f"{col}_probability", key) for col in ("churn", "purchase")
    }
    segments = _frame(
        wh,
        "SELECT segment_id, users, share, mean_churn_probability, mean_purchase_probability, "
        "description, k_choice FROM segment_summary WHERE source = ? AND score_date = ? "
        "ORDER BY segment_id",
        key,
        ["segment_id", "users", "share", "churn", "purchase", "description", "k_choice"],
    )
    drift = _frame(
        wh,
        "SELECT name, kind, psi, status, message FROM model_monitoring "
        "WHERE source = ? AND score_date = ? ORDER BY kind, name",
        key,
        ["name", "kind", "psi", "status", "message"],
    )
    performance = _frame(
        wh,
        "SELECT score_date, label, status, roc_auc, ece, positive_rate, mean_probability, message "
        "FROM model_performance_history WHERE source = ? AND score_date <= ? "
        "ORDER BY score_date, label",
        key,
        ["score_date", "label", "status", "roc_auc", "ece", "positive_rate", "mean_probability",
         "message"],
    )  # fmt: skip
    previous = wh.query(
        "SELECT max(score_date) FROM user_propensity_scores WHERE source = ? AND score_date < ?",
        key,
    )[0][0]
    movers = pd.DataFrame()
    if previous is not None:
        movers = _frame(
            wh,
            "SELECT s.user_id, s.churn_probability, s.churn_probability - p.churn_probability, "
            "s.purchase_probability, s.purchase_probability - p.purchase_probability, "
            "e.description FROM user_propensity_scores s "
            "JOIN user_propensity_scores p ON p.source = s.source AND p.user_id = s.user_id "
            "AND p.score_date = ? "
            "LEFT JOIN user_score_explanations e ON e.source = s.source AND e.user_id = s.user_id "
            "AND e.score_date = s.score_date AND e.label = 'churn' AND e.rank = 1 "
            "WHERE s.source = ? AND s.score_date = ? "
            "ORDER BY abs(s.churn_probability - p.churn_probability) DESC, s.user_id LIMIT 15",
            [previous, *key],
            ["user_id", "churn", "churn_change", "purchase", "purchase_change", "reason"],
        )

    fig, axes = plt.subplots(1, 2, figsize=(10, 2.8))
    for ax, col, colour in zip(axes, ["churn", "purchase"], ["#c62828", "#1565c0"], strict=True):
        ax.stairs(histograms[col], np.linspace(0, 1, BINS + 1), fill=True, color=colour)
        ax.set_title(f"{col} probability")
        ax.set_xlabel("probability")
        ax.set_ylabel("users")
    charts = {"scores": _png(fig)}
    fig, ax = plt.subplots(figsize=(10, 2.6))
    ax.bar(segments["segment_id"].astype(str), segments["users"], color="#555")
    ax.set_xlabel("segment")
    ax.set_ylabel("users")
    charts["segments"] = _png(fig)
    fig, ax = plt.subplots(figsize=(10, 3))
    known = drift.dropna(subset=["psi"])
    colours = known["status"].map(
        {"ok": "#2e7d32", "ok_trend": "#8bc34a", "warn": "#ef8f00", "fail": "#c62828"}
    )
    # The axis stops at twice the fail threshold; a taller bar is cut there and labelled.
    top = 2 * fail
    ax.bar(known["name"], known["psi"].clip(upper=top), color=colours.fillna("#777"))
    for x, v in enumerate(known["psi"]):
        if v > top:
            ax.annotate(f"{v:.2f}", (x, top), ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, top * 1.12)
    ax.axhline(warn, color="#ef8f00", ls="--", lw=1)
    ax.axhline(fail, color="#c62828", ls="--", lw=1)
    ax.set_ylabel("PSI")
    ax.tick_params(axis="x", rotation=60, labelsize=8)
    charts["drift"] = _png(fig)
    realised = performance[performance["status"] == "realised"]
    charts["performance"] = ""
    if not realised.empty:
        fig, ax = plt.subplots(figsize=(10, 2.8))
        for label, g in realised.groupby("label"):
            ax.plot(pd.to_datetime(g["score_date"]), g["roc_auc"], marker="o", label=label)
        ax.set_ylabel("realised ROC-AUC")
        ax.legend()
        fig.autofmt_xdate()
        charts["performance"] = _png(fig)

    status = worst_status(drift["status"])
    flagged = drift[drift["status"].isin(["warn", "fail"])]
    env = Environment(autoescape=True)
    return env.from_string(TEMPLATE).render(
        source=source,
        score_date=score_date,
        users=f"{users:,}",
        model_name=model_name,
        model_version=model_version,
        drift_status=status,
        drifting=", ".join(flagged["name"]),
        mean_churn=float(mean_churn),
        mean_purchase=float(mean_purchase),
        charts=charts,
        k_choice=segments["k_choice"].iloc[0] if len(segments) else "no segments",
        segments=[
            dict(r, churn=_fmt(r["churn"]), purchase=_fmt(r["purchase"]))
            for r in segments.to_dict("records")
        ],
        warn=warn,
        fail=fail,
        drift_rows=[
            dict(r, psi=_fmt(r["psi"])) for r in drift[drift["status"] != "ok"].to_dict("records")
        ],
        performance=performance_rows(performance, last=PERFORMANCE_ROWS),
        performance_note=(
            f"The last {PERFORMANCE_ROWS} of {performance['score_date'].nunique()} score dates."
            if performance["score_date"].nunique() > PERFORMANCE_ROWS
            else ""
        ),
        previous_date=previous,
        movers=[
            dict(
                r,
                churn=_fmt(r["churn"]),
                churn_change=_fmt(r["churn_change"], "+.3f"),
                purchase=_fmt(r["purchase"]),
                purchase_change=_fmt(r["purchase_change"], "+.3f"),
                reason=r["reason"] or "",
            )
            for r in movers.to_dict("records")
        ],  # fmt: skip
    )


def report_path(reports_dir: Path, source: str, score_date: date) -> Path:
    return reports_dir / score_date.isoformat() / f"{source}.html"


def write_report(
    wh: Warehouse, reports_dir: Path, source: str, score_date: date, *, warn: float, fail: float
) -> Path:
    """Render and write the page (atomically: a reader never sees half a page)."""
    path = report_path(reports_dir, source, score_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(wh, source, score_date, warn=warn, fail=fail), encoding="utf-8")
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    from pipeline.settings import apply_process_env

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", required=True)
    p.add_argument("--score-date", type=date.fromisoformat, required=True)
    a = p.parse_args(argv)
    from pipeline.source_mapping import load_mapping

    s = apply_process_env()
    health = load_mapping(a.source).monitoring
    path = write_report(
        Warehouse(s.warehouse_url), s.reports_dir, a.source, a.score_date,
        warn=health.psi_warn, fail=health.psi_fail,
    )  # fmt: skip
    print(path)


if __name__ == "__main__":
    main()
