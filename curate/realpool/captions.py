"""The caption each pool row gets: an emoji's CLDR name in one of a few phrasings, or a package's own text,
and for a share of rows the same text in another language (emojibase-data's names, Tux Paint's translations).

Emoji phrasings name the group, subgroup and skin tone in the words the zero-shot prompts use, so a prompt
word has been seen in training (`evalsets.TEMPLATES`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tierclip.curate.realpool.items import Item

EMOJI_PHRASINGS = ("{name}", "{name} emoji", "an emoji of {name}", "{name}, a {group} emoji", "{name}: {keywords}",
                   "{subgroup}: {name}")
KEYWORDS_SHOWN = 3


@dataclass(frozen=True)
class Caption:
    text: str | None
    lang: str | None        # "en", a translation's language code, or None without text


def english(item: Item, rng: np.random.Generator) -> Caption:
    """The item's English caption: a random phrasing of an emoji's name, the package's text otherwise."""
    if item.name is None:
        return Caption(item.caption, "en" if item.caption else None)
    fields = {"name": item.name, "group": item.labels.get("group"), "subgroup": item.labels.get("subgroup"),
              "keywords": ", ".join(item.labels.get("keywords", ())[:KEYWORDS_SHOWN])}
    usable = [p for p in EMOJI_PHRASINGS if all(fields[f] for f in ("group", "subgroup", "keywords") if "{" + f + "}" in p)]
    return Caption(usable[rng.integers(len(usable))].format(**fields), "en")


def translated(item: Item, rng: np.random.Generator) -> Caption:
    lang, text = item.translations[rng.integers(len(item.translations))]
    return Caption(text, lang)


def captions(items: list[Item], foreign: float, rng: np.random.Generator) -> list[Caption]:
    """One caption per item: a translation for `foreign` of all items (rounded; drawn among those that have one)."""
    with_translations = np.flatnonzero([bool(item.translations) for item in items])
    n_foreign = min(round(foreign * len(items)), len(with_translations))
    chosen = set(rng.choice(with_translations, size=n_foreign, replace=False).tolist()) if n_foreign else set()
    return [translated(item, rng) if i in chosen else english(item, rng) for i, item in enumerate(items)]
