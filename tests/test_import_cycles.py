"""No two project modules import each other, directly or through others, not even lazily inside a function.

A lazy import that dodges a cycle hides a tangle (inspect's data and page modules once did that: see the test below);
the import graph here counts every `import`/`from ... import` anywhere in a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("curate", "train", "analysis")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(("tierclip", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Project modules `path` imports (a `from pkg import name` counts `pkg.name` when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    known = set(paths)
    # a package's __init__ is not an edge worth following: importing pkg.mod runs pkg/__init__ first anyway
    return {name: {m for m in imported_modules(path, known) if m != name and not name.startswith(m + ".")}
            for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_inspect_rows_and_page_import_one_way():
    graph = import_graph()
    assert "tierclip.curate.selection.inspect_rows" in graph["tierclip.curate.selection.inspect_page"]
    assert "tierclip.curate.selection.inspect_page" not in graph["tierclip.curate.selection.inspect_rows"]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
