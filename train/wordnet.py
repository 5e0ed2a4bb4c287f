"""Synonyms from the WordNet 3.0 database files of Debian's `wordnet-base` (/usr/share/wordnet), read offline.

EDA's synonym replacement (train/text_views.py) needs one thing from WordNet: the lemma names of every
synset a word belongs to. nltk's WordNet reader would do it but refuses the Debian files (it also wants a
`lexnames` file, which the package does not ship) and nltk's own copy is a download at run time. So this
module reads the two documented file formats itself (wndb(5WN)): `index.POS` maps a lemma to its synset
offsets, `data.POS` holds each synset at its byte offset with its words. About 60 lines, no dependency,
nothing from the network.

Simplification against nltk's `wordnet.synsets(word)`: no morphological reduction (`morphy`), so an
inflected form ("shapes") finds only the synsets listed under that exact form.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from tierclip.curate.errors import UserError

WORDNET_DIR = Path(os.environ.get("TIERCLIP_WORDNET_DIR", "/usr/share/wordnet"))
POS_FILES = ("noun", "verb", "adj", "adv")
INSTALL_HINT = "install Debian's wordnet-base (apt-get install wordnet-base)"


def check_wordnet(folder: Path = WORDNET_DIR) -> Path:
    """The WordNet folder, or a UserError naming the missing file and the package to install."""
    for pos in POS_FILES:
        for kind in ("index", "data"):
            path = folder / f"{kind}.{pos}"
            if not path.is_file():
                raise UserError(f"{path}: missing; EDA synonym replacement needs WordNet 3.0: {INSTALL_HINT}")
    return folder


@functools.lru_cache(maxsize=2)
def _index(folder: Path) -> dict[tuple[str, str], tuple[int, ...]]:
    """(lemma, pos) -> synset offsets, from every index.POS file (license lines start with two spaces)."""
    index = {}
    for pos in POS_FILES:
        with open(folder / f"index.{pos}", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(" "):
                    continue
                fields = line.split()
                n_synsets = int(fields[2])
                index[(fields[0], pos)] = tuple(int(offset) for offset in fields[-n_synsets:])
    return index


def _synset_words(folder: Path, pos: str, offset: int) -> list[str]:
    """The words of the synset at `offset` in data.POS: `offset lex_filenum ss_type w_cnt(hex) word lex_id ...`."""
    with open(folder / f"data.{pos}", "rb") as handle:
        handle.seek(offset)
        fields = handle.readline().decode("utf-8").split()
    count = int(fields[3], 16)
    words = fields[4:4 + 2 * count:2]
    return [word.split("(")[0] for word in words]  # adjectives may carry a marker: "red(p)"


@functools.lru_cache(maxsize=65536)
def synonyms(word: str, folder: Path = WORDNET_DIR) -> tuple[str, ...]:
    """Lemma names of every synset of `word` (any part of speech), as EDA cleans them, without the word itself.

    EDA's cleaning: underscores and hyphens become spaces, lower case, letters and spaces only.
    Sorted, so a seeded choice among them is reproducible.
    """
    folder = check_wordnet(folder)
    key = word.lower().replace(" ", "_")
    found = set()
    for pos in POS_FILES:
        for offset in _index(folder).get((key, pos), ()):
            for lemma in _synset_words(folder, pos, offset):
                cleaned = "".join(c for c in lemma.replace("_", " ").replace("-", " ").lower() if c.isalpha() or c == " ")
                if cleaned.strip():
                    found.add(" ".join(cleaned.split()))
    found.discard(word.lower())
    return tuple(sorted(found))
