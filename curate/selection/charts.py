"""Matplotlib charts for `curate inspect`, written as PNG files (Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_counts(counts: dict[str, int], title: str, path: Path) -> Path:
    plt = _pyplot()
    labels = list(counts)
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(labels) + 1.2))
    ax.barh(labels[::-1], [counts[k] for k in labels][::-1], color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel("rows")
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    """Atomically (a full disk is an OSError naming `path`), then the figure is closed."""
    from tierclip.curate import atomic

    try:
        fig.tight_layout()
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
    finally:
        plt.close(fig)
    return path


def overlaid_histograms(groups: dict[str, np.ndarray], title: str, xlabel: str, path: Path, bins: int = 40) -> Path:
    """One histogram per labelled group on shared bins (density, so groups of any size compare)."""
    plt = _pyplot()
    values = [v[np.isfinite(v)] for v in groups.values()]
    finite = np.concatenate(values) if values else np.array([])
    edges = np.histogram_bin_edges(finite, bins=bins) if finite.size else np.linspace(0, 1, bins + 1)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for (label, _), data in zip(groups.items(), values, strict=True):
        if data.size:
            ax.hist(data, bins=edges, alpha=0.55, density=True, label=f"{label} (n={data.size})")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    if any(v.size for v in values):
        ax.legend(fontsize=8)
    return _save(plt, fig, path)
