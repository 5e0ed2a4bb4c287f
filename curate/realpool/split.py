"""The concept-level hold-out and the trusted seed set.

An emoji's concept (its normalised CLDR name without skin tone) is the unit: a held-out concept takes every
style and skin tone of that emoji out of training, into the eval set. A row of another source whose caption
is a held-out name ("A frog." when "frog" is held out) is left out of the pool as well and counted, so no
held-out name is ever a training caption. The trusted seed set (the filtering network's training data) is
drawn from the remaining clean-captioned sources and is not part of the noisy pool.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from tierclip.curate.realpool.items import Item, normalize_name

TRUSTED_SOURCES = ("emoji-google", "emoji-twitter", "openmoji", "tuxpaint")


@dataclass(frozen=True)
class Split:
    train: list[Item]          # the noisy pool's items
    heldout: list[Item]        # every image of a held-out concept
    trusted: list[Item]        # the trusted seed set (not in `train`)
    left_out: Counter          # source -> rows left out because their caption is a held-out name
    n_concepts: int
    n_heldout_concepts: int


def split_items(items: list[Item], holdout: float, trusted_n: int, rng: np.random.Generator) -> Split:
    concepts = sorted({item.concept for item in items if item.concept})
    held = {concepts[i] for i in rng.permutation(len(concepts))[: round(holdout * len(concepts))]}
    held_names = held | {normalize_name(item.name) for item in items if item.concept in held}
    heldout = [item for item in items if item.concept in held]
    leaks = [item for item in items if item.concept not in held and _names_heldout(item, held_names)]
    rest = [item for item in items if item.concept not in held and not _names_heldout(item, held_names)]
    trusted_keys = _trusted_keys(rest, trusted_n, rng)
    return Split(train=[item for item in rest if item.key not in trusted_keys], heldout=heldout,
                 trusted=[item for item in rest if item.key in trusted_keys], left_out=Counter(i.source for i in leaks),
                 n_concepts=len(concepts), n_heldout_concepts=len(held))


def _names_heldout(item: Item, held_names: set[str]) -> bool:
    """A row of a source without concepts whose caption is a held-out name."""
    return item.concept is None and normalize_name(item.caption) in held_names


def _trusted_keys(items: list[Item], n: int, rng: np.random.Generator) -> set[str]:
    """`n` items (seeded) of the trusted sources that have an image, a caption and no known defect."""
    candidates = [item.key for item in items if item.source in TRUSTED_SOURCES and item.path is not None
                  and item.caption and not any(item.flags.values())]
    n = min(n, len(candidates))
    return {candidates[i] for i in rng.choice(len(candidates), size=n, replace=False)} if n else set()
