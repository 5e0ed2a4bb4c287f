"""The project's size rule: no function or method in the tree is longer than 60 lines (most are under 20)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("curate", "train", "analysis", "tierclip", "bench", "tests")
LIMIT = 60


def long_functions(paths):
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LIMIT:
                    found.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_every_function_fits_the_size_rule():
    paths = [p for part in PARTS for p in sorted((ROOT / part).rglob("*.py"))]
    assert len(paths) > 100 and long_functions(paths) == []


def test_the_rule_finds_a_long_method(tmp_path):
    body = "\n".join(f"        x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "m.py").write_text(f"class A:\n    def short(self):\n        pass\n\n    def long(self):\n{body}\n")
    assert long_functions([tmp_path / "m.py"]) == [f"m.py:5 long ({LIMIT + 1} lines)"]
