"""The Python version pyproject.toml claims is the one the code and the pinned dependencies need.

Python 3.11 is the minimum: the pinned numpy 2.4, scipy 1.17, polars 2.1, pillow 13, pyarrow 26 and
matplotlib 3.11 have no Python 3.10 builds, and the code uses 3.11's stdlib (tomllib, datetime.UTC).
vermin (a dev dependency) knows in which Python version each stdlib module, member and syntax appeared,
so code that needs 3.12+ fails here before a user on 3.11 finds it.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MINIMUM = (3, 11)


def test_pyproject_ruff_and_readme_claim_the_same_minimum():
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py311"
    assert "Python ≥ 3.11" in (ROOT / "README.md").read_text()
    assert "3.10" not in (ROOT / "README.md").read_text()


def test_no_module_needs_more_than_the_minimum():
    vermin = Path(sys.executable).with_name("vermin")  # its console script (`python -m vermin` does not run)
    assert vermin.is_file(), "vermin is missing: `pip install -e '.[dev]'` (just setup) installs it"
    target = f"--target={MINIMUM[0]}.{MINIMUM[1]}-"
    proc = subprocess.run([str(vermin), target, "--violations", "--no-tips", "-q", "curate", "train", "analysis", "bench",
                           "tests"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_vermin_catches_code_newer_than_the_minimum(tmp_path):
    """The check above can fail: itertools.batched (3.12) is reported."""
    (tmp_path / "new.py").write_text("from itertools import batched\n")
    vermin = Path(sys.executable).with_name("vermin")
    proc = subprocess.run([str(vermin), "--target=3.11-", "--violations", "--no-tips", "-q", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "batched" in proc.stdout
