"""Imports go one way: an AST walk over every project file (imports inside functions included).

Layers, bottom to top: `config` < `modules` < `preprocessor` < `model_io` < `inference` < `tasks`
(< `bench`, `tools`, `tests`, which may import anything). A package may import only packages below
it, except where `ALLOWED` says otherwise, and no two files import each other in a cycle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "modules", "preprocessor", "model_io", "inference", "tasks")
# What each package may import from the project (besides itself). The style rules: `modules` imports no
# other project package; `preprocessor` never imports `inference` or `tasks`; `inference` never imports
# `tasks`; `model_io` (model files) sits between the networks and both of their users.
ALLOWED = {
    "config": set(),
    "modules": set(),
    "preprocessor": {"config", "modules"},
    "model_io": {"config", "modules", "preprocessor"},
    "inference": {"config", "modules", "preprocessor", "model_io"},
    "tasks": {"config", "modules", "preprocessor", "model_io", "inference"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            files[module_name(path)] = path
    return files


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules `path` imports anywhere (top level or inside functions), resolved to files in `known`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        # `from a.b import c` may name a module a.b.c or an attribute of a.b: take the longest that is a file.
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target:
            found.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:
                add(f"{stem}.{alias.name}")
    found.discard(name)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = project_files()
    known = set(files)
    return {name: imported_modules(path, name, known) for name, path in files.items()}


def test_every_package_imports_only_the_layers_below_it(graph):
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        if target.split(".")[0] != name.split(".")[0] and target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    )
    assert not wrong, "imports against the layers: " + "; ".join(wrong)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_no_import_cycle_between_files(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycle_between_packages(graph):
    packages: dict[str, set[str]] = {}
    for name, targets in graph.items():
        packages.setdefault(name.split(".")[0], set()).update(t.split(".")[0] for t in targets if t.split(".")[0] != name.split(".")[0])
    cycle = find_cycle(packages)
    assert cycle is None, "package cycle: " + " -> ".join(cycle or [])


def test_the_walk_sees_imports_inside_functions_and_finds_cycles(tmp_path):
    """The checker itself: a lazy import counts, and a two-file cycle is reported."""
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from tasks.fs2_task import FS2SingerTask\n    import inference.api\n", encoding="utf-8")
    assert imported_modules(source, "x.lazy", {"tasks.fs2_task", "inference.api"}) == {"tasks.fs2_task", "inference.api"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_holds_the_known_arrows(graph):
    """A walk that found nothing would pass the tests above: check arrows that must be there."""
    assert "model_io.loader" in graph["inference.api"]
    assert "inference.evaluate" in graph["tasks.fs2_task"]  # imported inside `infer`
    assert "model_io.description" in graph["tasks.visinger_task"]
    assert len(graph) > 60
