"""`train make-evalset clip-benchmark NAME`: unknown names, the built-in `dummy` set, nothing half-made left behind.

clip_benchmark is an optional dependency (users `pip install clip-benchmark`), so these tests put a small
stand-in package on sys.path that behaves as clip_benchmark 1.6.2's `clip_benchmark.datasets.builder` does
for what we call:
- `build_dataset(name, ...)` raises `ValueError("Unsupported dataset: NAME.")` for a name it does not know;
- `dummy` is one item `(torch.zeros(3, 224, 224), 0)` (a tensor, not a PIL image) with classes
  ["blank image", "noisy image"] and, as build_dataset sets for classification, templates with `{c}`;
- `get_dataset_default_task` says `zeroshot_retrieval` for caption sets, else `zeroshot_classification`.
Plus `broken`, a set whose third image fails to load (a download cut off), to test the clean-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tierclip.curate.errors import UserError
from tierclip.curate.evalset import read_evalset

ROOT = Path(__file__).resolve().parents[2]

FAKE_BUILDER = '''
import torch
from PIL import Image

TEMPLATES = ["a photo of a {c}.", "a bad photo of a {c}."]


class Dummy:
    def __init__(self):
        self.classes = ["blank image", "noisy image"]

    def __getitem__(self, i):
        return torch.zeros(3, 224, 224), 0

    def __len__(self):
        return 1


class Broken:
    classes = ["cat", "dog"]

    def __getitem__(self, i):
        if i == 2:
            raise OSError("image file is truncated")
        return Image.new("RGB", (8, 8), (i * 40, 0, 0)), i % 2

    def __len__(self):
        return 4


def get_dataset_default_task(dataset):
    return "zeroshot_retrieval" if dataset in ("flickr30k", "mscoco_captions") else "zeroshot_classification"


def build_dataset(dataset_name, root="root", transform=None, split="test", download=True, task="zeroshot_classification", **kw):
    if dataset_name == "dummy":
        ds = Dummy()
    elif dataset_name == "broken":
        ds = Broken()
    else:
        raise ValueError(f"Unsupported dataset: {dataset_name}.")
    ds.templates = TEMPLATES
    return ds
'''


@pytest.fixture
def fake_clip_benchmark(tmp_path, monkeypatch):
    site = tmp_path / "site"
    package = site / "clip_benchmark" / "datasets"
    package.mkdir(parents=True)
    (site / "clip_benchmark" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "builder.py").write_text(textwrap.dedent(FAKE_BUILDER))
    for name in _loaded():
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in _loaded():  # the stand-in must not look installed to later tests
        del sys.modules[name]


def _loaded() -> list[str]:
    return [m for m in sys.modules if m == "clip_benchmark" or m.startswith("clip_benchmark.")]


def leftovers(folder: Path) -> list[str]:
    """What a folder holds, less the stand-in package and clip_benchmark's download root."""
    return sorted(p.name for p in folder.iterdir() if p.name not in ("site", "raw")) if folder.exists() else []


def test_unknown_name_is_one_line_error_exit_2_and_writes_nothing(fake_clip_benchmark, tmp_path):
    out = tmp_path / "evals" / "nosuch"
    env = {**os.environ, "PYTHONPATH": f"{fake_clip_benchmark}{os.pathsep}{ROOT}"}
    proc = subprocess.run([sys.executable, "-m", "tierclip.train.cli", "make-evalset", "clip-benchmark", "nosuch", "--out", str(out),
                           "--download-root", str(tmp_path / "raw")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 300, lines
    assert lines[0].startswith("error: clip-benchmark: cannot build 'nosuch'") and "Unsupported dataset: nosuch." in lines[0]
    assert "Traceback" not in proc.stderr
    assert leftovers(tmp_path / "evals") == []


def test_dummy_set_converts_from_a_tensor_image(fake_clip_benchmark, tmp_path):
    from tierclip.train.eval_convert import convert_clip_benchmark

    report = convert_clip_benchmark("dummy", tmp_path / "dummy", tmp_path / "raw")
    assert (report.n_images, report.n_classes) == (1, 2)
    evalset = read_evalset(tmp_path / "dummy")
    task = evalset.tasks[0]
    assert task["classnames"] == ["blank image", "noisy image"]
    assert task["templates"] == ["a photo of a {}.", "a bad photo of a {}."]
    assert evalset.samples["label"].to_list() == ["blank image"]
    from PIL import Image

    with Image.open(tmp_path / "dummy" / evalset.samples["file"][0]) as image:
        assert image.size == (224, 224) and image.getextrema() == ((0, 0), (0, 0), (0, 0))
    assert leftovers(tmp_path) == ["dummy"]  # no .dummy.partial beside it


def test_failure_midway_leaves_nothing_and_a_retry_works(fake_clip_benchmark, tmp_path):
    from tierclip.train.eval_convert import convert_clip_benchmark

    out = tmp_path / "out"
    with pytest.raises(OSError, match="truncated"):
        convert_clip_benchmark("broken", out, tmp_path / "raw")
    assert leftovers(tmp_path) == []  # neither out/images nor the .out.partial work folder
    report = convert_clip_benchmark("broken", out, tmp_path / "raw", limit=2)
    assert report.n_images == 2 and read_evalset(out).samples.height == 2
    assert leftovers(tmp_path) == ["out"]


def test_stale_work_folder_of_a_killed_run_is_replaced(fake_clip_benchmark, tmp_path):
    from tierclip.train.eval_convert import convert_clip_benchmark

    stale = tmp_path / ".out.partial" / "images"
    stale.mkdir(parents=True)
    (stale / "old.png").write_bytes(b"x")
    convert_clip_benchmark("dummy", tmp_path / "out", tmp_path / "raw")
    assert leftovers(tmp_path / "out" / "images") == ["000000.png"]
    assert leftovers(tmp_path) == ["out"]


def test_existing_output_is_refused_before_any_download(fake_clip_benchmark, tmp_path):
    from tierclip.train.eval_convert import convert_clip_benchmark

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        convert_clip_benchmark("dummy", tmp_path / "out", tmp_path / "raw")
    assert leftovers(tmp_path / "out") == ["keep.txt"]
