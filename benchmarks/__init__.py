"""Speed and memory benchmarks (``make bench-*``); each writes its figures under ``results/``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def merge_entry(
    name: str, entry: dict, markdown: Callable[[list[dict]], str], *, results: Path = RESULTS
) -> str:
    """Put ``entry`` in ``results/<name>.json`` in place of the same machine's earlier one (one
    entry per machine), rewrite ``<name>.md`` from every entry, and return that markdown."""
    results.mkdir(exist_ok=True)
    path = results / f"{name}.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    entries = [e for e in entries if e["machine"] != entry["machine"]] + [entry]
    path.write_text(json.dumps(entries, indent=2) + "\n")
    text = markdown(entries)
    (results / f"{name}.md").write_text(text)
    return text
