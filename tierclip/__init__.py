"""tierclip: data curation and quality scaling for CLIP-style pre-training.

The repository keeps its three parts at the top (curate/, train/, analysis/); installed, they live under
this one import name (`tierclip.curate`, `tierclip.train`, `tierclip.analysis`, mapped in pyproject.toml's
package-dir), so the wheel puts no generic top-level `train` or `analysis` package into a user's environment.
"""

__version__ = "0.1.0"
