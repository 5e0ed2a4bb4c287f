"""tierclip: data curation and quality scaling for CLIP-style pre-training.

The repository keeps its three parts at the top (curate/, train/, analysis/); installed, they live under
this one import name (`tierclip.curate`, `tierclip.train`, `tierclip.analysis`, mapped in pyproject.toml's
package-dir), so the wheel puts no generic top-level `train` or `analysis` package into a user's environment.
"""

from pathlib import Path

__version__ = "0.1.0"

# Run from a source checkout (this folder beside curate/, train/, analysis/ and pyproject.toml), the parts are
# found beside this folder. Written by hand because an editable install's finder maps `tierclip.*` to the one
# checkout it was installed from: a second checkout or git worktree using the same venv, and the subprocesses
# its tests start with that checkout on PYTHONPATH, would otherwise import the first checkout's code.
_checkout = Path(__file__).resolve().parent.parent
_parts = ("curate", "train", "analysis")
if (_checkout / "pyproject.toml").is_file() and all((_checkout / part / "__init__.py").is_file() for part in _parts):
    __path__.append(str(_checkout))
