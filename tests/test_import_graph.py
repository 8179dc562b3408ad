"""The import graph: arrows point one way between packages, and no module imports itself back.

Layers, lowest first: ``pipeline`` (shared data layer) < ``expectations`` (gates) < ``jobs`` (Spark)
< ``behavior_model`` < orchestration (``dags``, ``benchmarks``). A module may import its own layer
or lower ones, never a higher one; within the project there is no import cycle; and only
``pipeline/settings.py`` reads the environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = {
    "pipeline": 0,
    "expectations": 1,
    "jobs": 2,
    "behavior_model": 3,
    "dags": 4,
    "benchmarks": 4,
}


def _modules() -> dict[str, Path]:
    out = {}
    for package in LAYERS:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path) -> set[str]:
    """Project modules imported anywhere in the file (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in LAYERS}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {m for m in _imports(path) if m in modules} - {name} for name, path in modules.items()
    }


def test_no_import_from_a_lower_layer_to_a_higher_one(graph):
    upward = [
        f"{src} -> {dst}"
        for src, dsts in graph.items()
        for dst in dsts
        if LAYERS[dst.split(".")[0]] > LAYERS[src.split(".")[0]]
    ]
    assert upward == []


def test_no_import_cycle(graph):
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_checker_sees_a_planted_upward_import(tmp_path):
    planted = tmp_path / "x.py"
    planted.write_text("def f():\n    from behavior_model.score import score_users\n")
    assert "behavior_model.score" in _imports(planted)


def test_only_the_settings_module_reads_the_environment():
    readers = sorted(
        str(path.relative_to(REPO))
        for path in _modules().values()
        if "os.environ" in path.read_text() or "os.getenv" in path.read_text()
    )
    assert readers == ["pipeline/settings.py"]
