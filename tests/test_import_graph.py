"""The import graph of eegmtl has no cycle and its layers point down.

Every module's imports are read from its source (AST), including imports inside functions, so a
cycle hidden behind a lazy import is found too. ``from package import name`` counts as an
import of ``package.name`` when that is a module, else of ``package``.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "eegmtl"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, level: int, current: str, is_package: bool) -> str:
    if level == 0:
        return module
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


@functools.cache
def imports_of(name: str) -> frozenset[str]:
    """eegmtl modules imported anywhere in module ``name`` (TYPE_CHECKING blocks excluded)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` imports do not run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, name, path.name == "__init__.py")
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:  # `import eegmtl.x.y` imports eegmtl.x.y's module
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("eegmtl"):
                out.add(t)
    return frozenset(out)


@functools.cache
def _graph() -> dict[str, set[str]]:
    graph = {name: set(imports_of(name)) for name in MODULES}
    # importing a.b.c runs a/__init__ and a/b/__init__ first
    for name in list(graph):
        for dep in list(graph[name]):
            parts = dep.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in MODULES and parent != name and not name.startswith(parent + "."):
                    graph[name].add(parent)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as a list of modules, first = last), or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_walker_sees_lazy_and_relative_imports() -> None:
    deps = imports_of("eegmtl.cli")
    assert "eegmtl.experiments" in deps and "eegmtl.evaluation.report" in deps  # lazy import
    assert "eegmtl.mixnet.defaults" in imports_of("eegmtl.mixnet")  # `from .defaults import`
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    cycle = find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize(("lower", "upper"), [
    ("eegmtl.mtl", "eegmtl.eeg"), ("eegmtl.mtl", "eegmtl.evaluation"),
    ("eegmtl.mtl", "eegmtl.experiments"), ("eegmtl.mtl", "eegmtl.mixnet"),
    ("eegmtl.evaluation", "eegmtl.experiments"), ("eegmtl.evaluation", "eegmtl.cli"),
    ("eegmtl._io", "eegmtl.mtl"), ("eegmtl.experiments", "eegmtl.cli"),
])
def test_layers_point_down(lower: str, upper: str) -> None:
    bad = sorted(f"{m} imports {d}" for m, deps in _graph().items()
                 if m == lower or m.startswith(lower + ".")
                 for d in deps if d == upper or d.startswith(upper + "."))
    assert not bad, bad
