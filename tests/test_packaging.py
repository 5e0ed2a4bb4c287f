"""The wheel installs under the one import name `tierclip` and lives beside a user's own top-level `train`."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("curate", "train", "analysis")


def listed_packages() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_listed_in_pyproject():
    folders = {"tierclip"} | {".".join(("tierclip", *p.parent.relative_to(ROOT).parts))
                              for part in PARTS for p in (ROOT / part).rglob("__init__.py")}
    folders |= {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tierclip").rglob("__init__.py")}
    folders |= {"tierclip.train.model_configs"}  # data only (the small open_clip JSON configs)
    assert listed_packages() == folders


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300, cwd=out)
    assert done.returncode == 0, done.stderr
    return next(out.glob("tierclip-*.whl"))


def test_the_wheel_has_one_top_level_name_and_the_model_configs(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"tierclip"}
    assert "tierclip/train/model_configs/tc-rn-tiny.json" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "train = tierclip.train.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_beside_a_foreign_top_level_train_both_import(wheel, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # not this checkout: what the wheel installed
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    (site / "train").mkdir()
    (site / "train" / "__init__.py").write_text("WHO = 'the user'\n")
    # tierclip's own dependencies (torch, typer, ...) come from the test interpreter's site-packages, appended last,
    # so they cannot shadow what was installed into the fresh venv (its editable tierclip finder is not loaded)
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = ("import train, tierclip.train.cli, tierclip.train.models, tierclip.curate.cli, tierclip.analysis.cli\n"
             "print(train.WHO, tierclip.train.cli.__file__, tierclip.train.models.model_config('tc-rn-tiny')['embed_dim'], sep='|')")
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    who, path, embed_dim = done.stdout.strip().split("|")
    assert who == "the user" and path.startswith(str(venv)) and int(embed_dim) > 0, done.stdout
