"""No two project modules import each other, directly or through others, not even lazily inside a function.

A lazy import that dodges a cycle hides a tangle (inspect's data and page modules once did that: see the test below);
the import graph here counts every `import`/`from ... import` anywhere in a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The three parts (folders at the top, installed as tierclip.<part>) and the tierclip folder itself (the demo,
# which sits above the parts and may import all three).
PACKAGES = ("curate", "train", "analysis", "tierclip")
# Which parts each part may import: train reads curate's formats, analysis reads run folders (it uses curate's
# plumbing: errors, atomic writes, the CLI helpers) and never train; nothing imports the demo.
MAY_IMPORT = {"curate": {"curate"}, "train": {"curate", "train"}, "analysis": {"curate", "analysis"},
              "demo": {"curate", "train", "analysis", "demo"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = parts[1:] if parts[0] == "tierclip" else parts
    return ".".join(("tierclip", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def part_of(module: str) -> str | None:
    """`tierclip.train.loop` -> train; None for the top-level `tierclip` package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


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


def test_imports_point_one_way_between_the_parts():
    """curate imports no other part, train and analysis only curate; the demo (tierclip.demo) may import all
    three and is imported by none of them."""
    graph = import_graph()
    assert any(part_of(m) == "train" for m in graph["tierclip.demo.steps"])  # the demo's imports are real and seen here
    upward = sorted((name, m) for name, imported in graph.items() for m in imported
                    if part_of(name) and part_of(m) and part_of(m) not in MAY_IMPORT[part_of(name)])
    assert upward == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
