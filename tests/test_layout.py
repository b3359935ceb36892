"""The layout of labcore/ and ui/: packages by stage that import only downward, no import
cycle, small modules, and every module importable on its own."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "labcore"
MAX_LINES = 400
# The order, written once: a package imports only from the levels before its own. Packages on
# one level (train and show) never import each other. The root modules (settings, timing,
# quiet) are the bottom level.
LEVELS = [("",), ("data",), ("model",), ("store",), ("train", "show"), ("bench",)]


def module_names(package: Path = PACKAGE) -> list[str]:
    """Every module under `package`, dotted ("labcore.store.runs"), __init__ and __main__ left out."""
    return sorted(dotted(p, package) for p in package.rglob("*.py") if p.stem not in ("__init__", "__main__"))


def dotted(path: Path, package: Path) -> str:
    return ".".join((package.name, *path.relative_to(package).with_suffix("").parts))


def labcore_imports(path: Path, package: Path) -> set[str]:
    """The labcore modules `path` (a file of `package`) imports anywhere: top level, inside a
    function, or for type checking only."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("labcore.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "labcore" or node.module.startswith("labcore."):
                # `from labcore.store import runs` names a module; `from labcore.store.runs import Run` does not
                found |= {f"{node.module}.{a.name}" if is_module(package, f"{node.module}.{a.name}") else node.module
                          for a in node.names}
    return found


def is_module(package: Path, name: str) -> bool:
    return package.parent.joinpath(*name.split(".")).with_suffix(".py").is_file()


def import_graph(package: Path) -> dict[str, set[str]]:
    return {dotted(p, package): labcore_imports(p, package) for p in package.rglob("*.py") if p.stem != "__init__"}


def level_of(module: str) -> int:
    """The level of a dotted module: its package's place in LEVELS (root modules: 0)."""
    parts = module.split(".")
    package = parts[1] if len(parts) > 2 else ""
    return next(i for i, level in enumerate(LEVELS) if package in level)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import that breaks the order: a package importing one at its own level (another
    package) or above it."""
    wrong = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            same_package = module.split(".")[:2] == target.split(".")[:2] and len(target.split(".")) > 2
            if same_package or target == "labcore":
                continue
            if level_of(target) > level_of(module) or (level_of(target) == level_of(module) and level_of(module) > 0):
                wrong.append(f"{module} -> {target}")
    return wrong


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


def test_every_package_is_on_a_level_and_says_what_it_holds():
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(name for level in LEVELS for name in level if name)
    for name in packages:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc and "Imports" in doc, name  # what it holds and what it may import
    assert sorted(p.stem for p in PACKAGE.glob("*.py")) == ["__init__", "quiet", "settings", "timing"]


def test_labcore_imports_only_downward():
    graph = import_graph(PACKAGE)
    assert "labcore.model.recipe" in graph["labcore.train.training"]
    assert upward_imports(graph) == []


def test_labcore_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "labcore" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in [root / "labcore", *(p for p in (root / "labcore").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return root / "labcore"


@pytest.mark.parametrize("importer, line, broken", [
    ("data/sources.py", "from labcore.store.runs import Run\n", "labcore.data.sources -> labcore.store.runs"),
    ("store/runs.py", "def f():\n    from labcore.train import lanes\n", "labcore.store.runs -> labcore.train.lanes"),
    ("show/plots.py", "import labcore.train.lanes\n", "labcore.show.plots -> labcore.train.lanes"),
    ("train/lanes.py", "from labcore.show.plots import f\n", "labcore.train.lanes -> labcore.show.plots"),
    ("settings.py", "from labcore.data import sources\n", "labcore.settings -> labcore.data.sources"),
])
def test_the_order_check_finds_an_upward_import(tmp_path, importer, line, broken):
    """Each of these breaks the order (a function-level import too); the check names it."""
    files = {"settings.py": "", "data/sources.py": "from labcore.settings import X\n",
             "store/runs.py": "from labcore.data.sources import Y\n", "train/lanes.py": "from labcore.store import runs\n",
             "show/plots.py": "from labcore.store.runs import Run\n"}
    package = make_tree(tmp_path, files)
    assert upward_imports(import_graph(package)) == []
    (package / importer).write_text(files.get(importer, "") + line)
    assert upward_imports(import_graph(package)) == [broken]


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    package = make_tree(tmp_path, {"a.py": "from labcore import b\n", "b.py": "import labcore.c\n",
                                   "c.py": "def f():\n    from labcore.a import x\n",
                                   "d.py": "from labcore.c import f\n"})
    assert find_cycle(import_graph(package)) == ["labcore.a", "labcore.b", "labcore.c", "labcore.a"]
    (package / "c.py").write_text("def f():\n    from labcore.d import x\n")
    assert find_cycle(import_graph(package)) == ["labcore.c", "labcore.d", "labcore.c"]
    (package / "d.py").write_text("import os\n")
    assert find_cycle(import_graph(package)) is None


def test_the_plan_sits_above_training():
    """Training reports progress through its own Tick; estimates, ETAs and lanes import it,
    never the other way round."""
    graph = import_graph(PACKAGE)
    for planner in ("labcore.train.estimate", "labcore.train.eta", "labcore.train.lanes", "labcore.train.lab"):
        assert planner not in graph["labcore.train.training"], planner
    for below in ("labcore.train.estimate", "labcore.train.features", "labcore.model.pretext", "labcore.model.recipe"):
        assert "labcore.train.training" not in graph[below], below


def long_modules(base: Path, *folders: str) -> dict[str, int]:
    return {str(p.relative_to(base)): n for folder in folders for p in (base / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}


def test_no_module_is_over_400_lines(tmp_path):
    assert long_modules(ROOT, "labcore", "ui", "app_pages") == {}
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "deep" / "short.py").write_text("x = 1\n" * MAX_LINES)
    assert long_modules(tmp_path, "deep") == {"deep/long.py": MAX_LINES + 1}


CHECK_EACH = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("labcore", "ui")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=-3))
print("\\n".join(failed) or "all imported")
"""


def test_every_module_imports_on_its_own():
    """Each module imported first, with no other labcore or ui module loaded before it (one
    interpreter; third-party libraries stay loaded, so it takes seconds, not minutes)."""
    names = module_names() + module_names(ROOT / "ui")
    assert len(names) > 30 and "labcore.store.inflight" in names and "ui.status" in names
    done = subprocess.run([sys.executable, "-c", CHECK_EACH, *names], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("all imported"), done.stdout
