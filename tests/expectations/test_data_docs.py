"""Data Docs: one site per source, readable offline, an index across runs, a retention."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd

from expectations import suites
from expectations.data_docs import apply_retention, localize, write_index
from expectations.gate import run_gate

SUITES = ["run_summary"]


def _gate(site, day: str, unaccounted: int):
    row = {"raw_rows": 10, "clean_rows": 9 - unaccounted, "quarantined_rows": 1,
           "duplicate_rows": 0, "unaccounted_rows": unaccounted}  # fmt: skip
    try:
        run_gate("run_summary", pd.DataFrame([row]), suites.run_summary(),
                 docs_path=site / "runs" / day / "run_summary.json", site=site, run_name=day)  # fmt: skip
    except Exception:  # noqa: BLE001 - a failed gate still files its page
        pass


def test_pages_load_nothing_from_the_network_and_the_index_links_every_run(tmp_path):
    site = tmp_path / "shop"
    _gate(site, "2026-01-01", 0)
    _gate(site, "2026-01-02", 1)
    index = write_index(site, source="shop", suites=SUITES).read_text()
    page = (site / "runs" / "2026-01-02" / "run_summary.html").read_text()
    for text in (page, index):
        assert not re.findall(
            r"(?:src|href)=\"https?://(?!greatexpectations)[^\"]+\.(?:css|js)", text
        )
    # Every local asset the page names exists in the site (styled offline).
    for ref in re.findall(r"(?:src|href)=\"(\.\./\.\./static/[^\"]+)\"", page):
        assert (site / ref.removeprefix("../../")).exists(), ref
    assert "bootstrap.min.css" in page and "jquery.min.js" in page
    # The icon font the stylesheet loads (../webfonts/ from static/vendor/) is there too.
    assert (site / "static" / "webfonts" / "fa-solid-900.woff2").exists()
    # Newest first, the failure visible.
    assert index.index("2026-01-02") < index.index("2026-01-01")
    assert "runs/2026-01-02/run_summary.html'>FAILED" in index
    assert "runs/2026-01-01/run_summary.html'>passed" in index
    # One copy of the static assets per site, not per page.
    assert len(list(site.rglob("bootstrap.min.css"))) == 1


def test_retention_counts_run_dates_not_the_wall_clock(tmp_path):
    site = tmp_path / "shop"
    for day in ("2026-01-01", "2026-01-20", "2026-02-01"):
        (site / "runs" / day).mkdir(parents=True)
    removed = apply_retention(site, run_date=date(2026, 2, 1), retention_days=14)
    assert removed == ["2026-01-01"]
    assert sorted(p.name for p in (site / "runs").iterdir()) == ["2026-01-20", "2026-02-01"]


def test_chart_libraries_and_dark_theme_are_dropped_not_fetched():
    page = (
        '<link href="https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css" rel="stylesheet">'
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>'
        '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
    )
    assert (
        localize(page, root="../../") == '<script src="../../static/vendor/jquery.min.js"></script>'
    )
