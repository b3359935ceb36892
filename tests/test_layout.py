"""The layout of labcore/: one direction of dependency (no import cycle), small modules, and
every module importable on its own."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "labcore"
MAX_LINES = 400


def module_names() -> list[str]:
    return sorted(f"labcore.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def labcore_imports(path: Path) -> set[str]:
    """The labcore modules `path` imports anywhere (top level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("labcore.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "labcore":  # from labcore import metrics
                found |= {f"labcore.{a.name}" for a in node.names}
            elif node.module.startswith("labcore."):
                found.add(node.module)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    return {f"labcore.{p.stem}": labcore_imports(p) for p in package.glob("*.py") if p.stem != "__init__"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [node])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_labcore_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert "labcore.training" in graph and "labcore.recipe" in graph["labcore.training"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    (tmp_path / "a.py").write_text("from labcore import b\n")
    (tmp_path / "b.py").write_text("import labcore.c\n")
    (tmp_path / "c.py").write_text("def f():\n    from labcore.a import x\n")
    (tmp_path / "d.py").write_text("from labcore.c import f\n")
    assert find_cycle(import_graph(tmp_path)) == ["labcore.a", "labcore.b", "labcore.c", "labcore.a"]
    (tmp_path / "c.py").write_text("def f():\n    from labcore.d import x\n")
    assert find_cycle(import_graph(tmp_path)) == ["labcore.c", "labcore.d", "labcore.c"]
    (tmp_path / "d.py").write_text("import os\n")
    assert find_cycle(import_graph(tmp_path)) is None


def test_the_plan_sits_above_training():
    """Training reports progress through its own Tick; estimates, ETAs and lanes import it,
    never the other way round."""
    graph = import_graph(PACKAGE)
    for planner in ("labcore.estimate", "labcore.eta", "labcore.lanes", "labcore.lab"):
        assert planner not in graph["labcore.training"], planner
    for below in ("labcore.estimate", "labcore.features", "labcore.pretext", "labcore.recipe"):
        assert "labcore.training" not in graph[below], below


def test_no_module_is_over_400_lines():
    long = {p.name: n for p in PACKAGE.glob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


CHECK_EACH = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "labcore" or m.startswith("labcore.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=-3))
print("\\n".join(failed) or "all imported")
"""


def test_every_module_imports_on_its_own():
    """Each module imported first, with no other labcore module loaded before it (one
    interpreter; third-party libraries stay loaded, so it takes seconds, not minutes)."""
    names = module_names()
    assert len(names) > 20
    done = subprocess.run([sys.executable, "-c", CHECK_EACH, *names], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("all imported"), done.stdout
