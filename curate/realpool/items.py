"""What every package reader hands the pool builder: one `Item` per image, with its text and provenance."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Item:
    """One image of a package with the text the package gives it.

    `caption` is the English caption (None when the package has none); `translations` the same text in other
    languages as (language code, text); `concept` the hold-out unit (the normalised English name of an emoji,
    shared by all its styles and skin tones; None for sources that are never held out); `name` the emoji's
    CLDR name as the held-out retrieval caption; `labels` the zero-shot labels (group, subgroup, skin_tone);
    `flags` the ground truth of a defect the package itself has (gt_* -> True), `dup_of` the key of the item
    it duplicates.
    """

    key: str
    source: str
    path: Path | None          # the image file (PNG or SVG); None when the package lists text without an image
    caption: str | None
    license: str
    attribution: str
    relative: str              # the path inside its package, kept in the sample's json
    concept: str | None = None
    name: str | None = None
    labels: dict = field(default_factory=dict)
    translations: tuple[tuple[str, str], ...] = ()
    flags: dict = field(default_factory=dict)
    dup_of: str | None = None


def normalize_name(text: str | None) -> str:
    """A caption or name as a comparable key: NFKC, lower case, punctuation dropped, a leading article dropped."""
    if not text:
        return ""
    words = re.sub(r"[^\w\s]", " ", unicodedata.normalize("NFKC", text).lower()).split()
    if len(words) > 1 and words[0] in ("a", "an", "the"):
        words = words[1:]
    return " ".join(words)


def key_of(source: str, relative: str) -> str:
    """A WebDataset-safe key from the source and the file's path inside its package (folder ingest's rule)."""
    from tierclip.curate.ingest.folder import path_key

    return path_key(f"{source}/{relative}")
