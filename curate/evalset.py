"""The eval-set format that `curate synth` writes and `train eval` reads.

```
EVAL/
  evalset.json     {"name", "schema_version", "tasks": [TASK, ...]}
  samples.parquet  file (relative to EVAL/), caption (nullable), one column per label
  images/...       the image files
```

A task is one of
- `{"name": "shape", "kind": "zeroshot", "label_column": "shape",
    "classnames": [...], "templates": ["a photo of a {}.", ...]}`:
  zero-shot classification; a row's label is its class name (a string in
  `label_column`), rows whose label is null are not part of the task;
- `{"name": "retrieval", "kind": "retrieval", "caption_column": "caption"}`:
  image-text retrieval over the rows whose caption is not null.

Any folder-of-classes data set (Fashion-MNIST, ...) can be converted into this
format, so evaluation has one reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from tierclip.curate import atomic
from tierclip.curate.errors import UserError

SCHEMA_VERSION = 1
TASK_KINDS = ("zeroshot", "retrieval")


@dataclass(frozen=True)
class EvalSet:
    root: Path
    name: str
    tasks: tuple[dict, ...]
    samples: pl.DataFrame

    def image_path(self, relative: str) -> Path:
        return self.root / relative


def write_evalset(root: str | Path, name: str, tasks: list[dict], samples: pl.DataFrame) -> None:
    """Write the task list and sample table (the images must already be under root)."""
    root = Path(root)
    for task in tasks:
        _check_task(task, samples.columns, root)
    atomic.write_parquet(root / "samples.parquet", samples)
    atomic.write_json(root / "evalset.json", {"name": name, "schema_version": SCHEMA_VERSION, "tasks": tasks})


def read_evalset(root: str | Path) -> EvalSet:
    root = Path(root)
    spec_path = root / "evalset.json"
    if not spec_path.is_file():
        raise UserError(f"{root}: not an eval set (no evalset.json)")
    spec = json.loads(spec_path.read_text())
    samples = pl.read_parquet(root / "samples.parquet")
    for task in spec["tasks"]:
        _check_task(task, samples.columns, root)
    return EvalSet(root, spec["name"], tuple(spec["tasks"]), samples)


def _check_task(task: dict, columns: list[str], root: Path) -> None:
    kind = task.get("kind")
    if kind not in TASK_KINDS:
        raise UserError(f"{root}: task {task.get('name')!r} has unknown kind {kind!r} (expected one of {TASK_KINDS})")
    column = task["label_column"] if kind == "zeroshot" else task["caption_column"]
    if column not in columns:
        raise UserError(f"{root}: task {task['name']!r} needs column {column!r} in samples.parquet")
