"""The package's layout: its modules import each other without a circle, and the reader does not know the builder.

The graph is read from the source with ast, so every import counts — at the top of a module or deferred inside a
function (a deferred import hides a circle at load time, it does not remove it)."""

from __future__ import annotations

import ast
from pathlib import Path

import tuanjian_xlsx

PACKAGE = "tuanjian_xlsx"
ROOT = Path(tuanjian_xlsx.__file__).parent


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name; a subpackage by its __init__.py."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = (PACKAGE,) + path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(name: str, path: Path, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in known}
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base not in known:
        return set()
    # `from . import guard` imports the module guard; `from .x import f` the module x
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (itself and the bare package left out)."""
    known = modules()
    graph = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _imported(name, path, node, known)
        graph[name] = deps - {name, PACKAGE}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (its modules in order, the first repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = "open"
        path.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                return path[path.index(d):] + [d]
            if d not in state and (cycle := visit(d)):
                return cycle
        path.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for d in graph[todo.pop()] - seen:
            seen.add(d)
            todo.append(d)
    return seen


def test_the_graph_sees_the_imports():
    graph = import_graph()
    assert f"{PACKAGE}.roster" in graph[f"{PACKAGE}.roster_book"]
    assert f"{PACKAGE}.guard" in graph[f"{PACKAGE}.read"]  # `from . import guard`
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " → ".join(m.removeprefix(f"{PACKAGE}.") for m in cycle or [])


def test_the_reader_does_not_import_the_builder():
    builder = f"{PACKAGE}.build"
    reached = reachable(import_graph(), f"{PACKAGE}.read")
    assert not {m for m in reached if m == builder or m.startswith(builder + ".")}
