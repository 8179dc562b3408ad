"""Data Docs people can open anywhere: one site per source, an index across runs, a retention.

GX renders each gate's validation page (``run_gate``); this module files it under
``<site>/runs/<run date>/<suite>.html`` beside the raw result ``<suite>.json``, points the page's
CSS and JavaScript at copies shipped in ``data_docs_static/vendor`` (the GX templates load them
from public CDNs, so offline the pages were unstyled), and rewrites ``<site>/index.html``: one row
per run date, one column per gate, newest first. GX's own fonts and images are copied once per
site, not once per page (one site per date and suite reached 968 MB for 60 days).

Retention is counted in run dates, never from "now": a run for D removes the runs of dates before
D - ``retention_days``.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

# vendor/ (CSS, JS) and webfonts/ (fontawesome.min.css loads ../webfonts/*), copied to <site>/static.
SHIPPED_STATIC = Path(__file__).parent / "data_docs_static"

# CDN address in the GX templates -> vendored file ("" drops the tag: dark theme and chart
# libraries, which our suites do not use).
_CDN = {
    r"https://maxcdn\.bootstrapcdn\.com/bootstrap/4\.3\.1/css/bootstrap\.min\.css": "bootstrap.min.css",
    r"https://stackpath\.bootstrapcdn\.com/bootstrap/4\.3\.1/js/bootstrap\.min\.js": "bootstrap.min.js",
    r"https://code\.jquery\.com/jquery-3\.7\.1\.min\.js": "jquery.min.js",
    r"https://cdnjs\.cloudflare\.com/ajax/libs/popper\.js/1\.12\.9/umd/popper\.min\.js": "popper.min.js",
    r"https://unpkg\.com/bootstrap-table@1\.19\.1/dist/bootstrap-table\.min\.css": "bootstrap-table.min.css",
    r"https://unpkg\.com/bootstrap-table@1\.19\.1/dist/bootstrap-table\.min\.js": "bootstrap-table.min.js",
    r"https://unpkg\.com/bootstrap-table@1\.19\.[01]/dist/extensions/filter-control/bootstrap-table-filter-control(\.min)?\.css": "bootstrap-table-filter-control.min.css",
    r"https://unpkg\.com/bootstrap-table@1\.19\.1/dist/extensions/filter-control/bootstrap-table-filter-control\.min\.js": "bootstrap-table-filter-control.min.js",
    r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/1\.9\.0/css/bootstrap-datepicker\.min\.css": "bootstrap-datepicker.min.css",
    r"https://cdnjs\.cloudflare\.com/ajax/libs/bootstrap-datepicker/1\.9\.0/js/bootstrap-datepicker\.min\.js": "bootstrap-datepicker.min.js",
    r"https://cdnjs\.cloudflare\.com/ajax/libs/font-awesome/6\.6\.0/css/all\.min\.css": "fontawesome.min.css",
    # GX's logo from its S3 bucket: the copy GX ships in its own static folder.
    r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/[a-z_-]+\.png(\?[^\"]*)?": "../images/logo-long.png",
    r"https://cdn\.jsdelivr\.net/npm/@forevolve/bootstrap-dark@1\.1\.0/dist/css/bootstrap-prefers-dark\.css": "",
    r"https://cdn\.jsdelivr\.net/npm/vega(-lite|-embed)?@\d+": "",
}
_PAGE_DEPTH = "../../"  # runs/<date>/<suite>.html -> site root


def localize(page: str, *, root: str) -> str:
    """``page`` with CDN assets replaced by the vendored copies under ``<root>static/vendor``."""
    for pattern, name in _CDN.items():
        if name:
            page = re.sub(pattern, f"{root}static/vendor/{name}", page)
        else:  # drop the whole tag
            page = re.sub(rf'<link[^>]*href="{pattern}"[^>]*>', "", page)
            page = re.sub(rf'<script[^>]*src="{pattern}"[^>]*>\s*</script>', "", page)
    return page


def publish_page(site: Path, *, built_site: Path, run_date: str, suite: str) -> Path:
    """File the validation page GX built in ``built_site`` under the source's site."""
    pages = sorted((built_site / "validations").rglob("*.html"))
    if len(pages) != 1:
        raise RuntimeError(f"{built_site}: expected one validation page, found {len(pages)}")
    ensure_static(site, built_site / "static")
    page = pages[0].read_text()
    depth = len(pages[0].relative_to(built_site).parts) - 1
    page = page.replace("../" * depth, _PAGE_DEPTH)  # its links to static/ and index.html
    out = site / "runs" / run_date / f"{suite}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(localize(page, root=_PAGE_DEPTH))
    return out


def ensure_static(site: Path, gx_static: Path) -> None:
    """GX's fonts, images and styles and the vendored CSS/JS, copied once per site."""
    static = site / "static"
    if not (static / "vendor").exists():
        if gx_static.exists():
            shutil.copytree(gx_static, static, dirs_exist_ok=True)
        shutil.copytree(SHIPPED_STATIC, static, dirs_exist_ok=True)


def apply_retention(site: Path, *, run_date: date, retention_days: int) -> list[str]:
    """Remove the runs of dates before ``run_date - retention_days``; returns the removed dates."""
    oldest = run_date - timedelta(days=retention_days)
    removed = []
    for folder in sorted((site / "runs").glob("*")):
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if day < oldest:
            shutil.rmtree(folder)
            removed.append(folder.name)
    return removed


def write_index(site: Path, *, source: str, suites: list[str]) -> Path:
    """``index.html``: every run date kept, newest first, each gate's outcome linked to its page."""
    rows = []
    for folder in sorted((site / "runs").glob("*"), reverse=True):
        cells = []
        for suite in suites:
            result = folder / f"{suite}.json"
            if not result.exists():
                cells.append("<td class='text-muted'>not run</td>")
                continue
            described = json.loads(result.read_text())
            ok = described.get("success")
            stats = described.get("statistics", {})
            label = "passed" if ok else "FAILED"
            css = "text-success" if ok else "text-danger font-weight-bold"
            text = f"{label} ({stats.get('successful_expectations', '?')}/{stats.get('evaluated_expectations', '?')})"
            link = f"runs/{folder.name}/{suite}.html"
            cell = (
                f"<a class='{css}' href='{link}'>{text}</a>"
                if (folder / f"{suite}.html").exists()
                else text
            )
            cells.append(f"<td>{cell}</td>")
        rows.append(f"<tr><th>{html.escape(folder.name)}</th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(s)}</th>" for s in suites)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Data Docs: {html.escape(source)}</title>
<link rel="stylesheet" href="static/vendor/bootstrap.min.css"></head>
<body class="container-fluid p-4">
<h1 class="h3">Data quality gates: {html.escape(source)}</h1>
<p class="text-muted">One row per run date (newest first), one column per gate; each cell opens the
validation page. Expectations passed / evaluated. Raw results: <code>runs/&lt;date&gt;/&lt;gate&gt;.json</code>.</p>
<table class="table table-sm table-hover"><thead><tr><th>run date</th>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>
"""
    out = site / "index.html"
    out.write_text(page)
    return out
