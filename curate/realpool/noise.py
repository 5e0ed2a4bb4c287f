"""Injected misalignment: a share of the pool's captions rotated among themselves (flag `gt_misaligned`).

The chosen rows, in a random order, each take the caption of the row half-way round that order, so no row
keeps its own caption and, with concepts spread at random, a donor is almost never the same emoji in another
style. A row whose donor shows the same concept or has the same caption keeps its own caption and is not
flagged (counted in `Rotation.kept`), so `gt_misaligned` is always a real mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rotation:
    donors: dict[int, int]   # row -> the row whose caption it takes
    kept: int                # chosen rows whose donor matched them (left unchanged)


def rotate(captions: list[str | None], concepts: list[str | None], usable: list[bool], share: float,
           rng: np.random.Generator) -> Rotation:
    """Rotate `share` of the usable rows' captions (rounded); rows with no caption are never chosen."""
    eligible = np.flatnonzero([ok and caption is not None for ok, caption in zip(usable, captions, strict=True)])
    n = min(round(share * len(usable)), len(eligible))
    if n < 2:
        return Rotation({}, 0)
    chosen = rng.choice(eligible, size=n, replace=False)
    donors, kept = {}, 0
    for i, row in enumerate(chosen.tolist()):
        donor = int(chosen[(i + n // 2) % n])
        if captions[donor] == captions[row] or (concepts[row] is not None and concepts[donor] == concepts[row]):
            kept += 1
        else:
            donors[row] = donor
    return Rotation(donors, kept)
