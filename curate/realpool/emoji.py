"""Emoji images with their names: Google's and Twitter's styles (npm emoji-datasource-*) and OpenMoji (SVG).

Text comes from three packages joined on the emoji's code point sequence (FE0F variation selectors dropped):
- the CLDR name of every code, skin tones included ("waving hand: medium skin tone"), and the names in 27
  other languages from emojibase-data (`LANG/data.json`); a code it lacks falls back to OpenMoji's
  annotation, then to emoji-datasource's Unicode name;
- group and subgroup from emoji-datasource (`category`, `subcategory`) or, for OpenMoji's own
  pictures, openmoji.json's `group`/`subgroups`; keywords from openmoji.json's `tags` and `openmoji_tags`.
Every style and skin tone of an emoji shares its concept: the normalised CLDR name of the emoji without
its skin-tone modifiers, the unit the concept hold-out moves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tierclip.curate.realpool.items import Item, key_of, normalize_name
from tierclip.curate.realpool.packages import by_name, inside, require

TONES = {"1F3FB": "light skin tone", "1F3FC": "medium-light skin tone", "1F3FD": "medium skin tone",
         "1F3FE": "medium-dark skin tone", "1F3FF": "dark skin tone"}
# openmoji.json's group slugs as emoji-datasource's categories (OpenMoji's extras have no Unicode group).
GROUPS = {"smileys-emotion": "Smileys & Emotion", "people-body": "People & Body", "component": "Component",
          "animals-nature": "Animals & Nature", "food-drink": "Food & Drink", "travel-places": "Travel & Places",
          "activities": "Activities", "objects": "Objects", "symbols": "Symbols", "flags": "Flags"}
ENGLISH = ("en", "en-gb")


@dataclass(frozen=True)
class EmojiStyle:
    source: str
    package: str
    license: str
    attribution: str


STYLES = {
    "emoji-google": EmojiStyle("emoji-google", "emoji-datasource-google", "Apache-2.0", "Noto Emoji by Google"),
    "emoji-twitter": EmojiStyle("emoji-twitter", "emoji-datasource-twitter", "CC-BY-4.0",
                                "Twemoji by Twitter, Inc and other contributors"),
    "openmoji": EmojiStyle("openmoji", "openmoji", "CC-BY-SA-4.0", "OpenMoji"),
}


@dataclass(frozen=True)
class EmojiText:
    """The text tables every style reads, keyed by normalised code."""

    cldr: dict[str, str]                      # English CLDR name per code
    names: dict[str, dict[str, str]]          # language -> code -> name
    openmoji: dict[str, dict]                 # openmoji.json row per code


def code(hexcode: str) -> str:
    """`1F636-200D-1F32B-FE0F` -> `1F636-200D-1F32B`: the key the three packages share."""
    return "-".join(part for part in hexcode.upper().split("-") if part != "FE0F")


def base_code(hexcode: str) -> str:
    return "-".join(part for part in code(hexcode).split("-") if part not in TONES)


def tone_of(hexcode: str) -> str | None:
    """The skin tone of a single-tone code; None without a tone or with two different ones."""
    tones = {part for part in code(hexcode).split("-") if part in TONES}
    return TONES[tones.pop()] if len(tones) == 1 else None


def read_text() -> EmojiText:
    emojibase = require(by_name("emojibase-data"))
    names = {lang.name: _labels(json.loads((lang / "data.json").read_text(encoding="utf-8")))
             for lang in sorted(emojibase.iterdir()) if (lang / "data.json").is_file()}
    openmoji = json.loads((require(by_name("openmoji")) / "data" / "openmoji.json").read_text(encoding="utf-8"))
    return EmojiText(names["en"], names, {code(row["hexcode"]): row for row in openmoji})


def _labels(rows: list[dict]) -> dict[str, str]:
    labels = {}
    for row in rows:
        labels[code(row["hexcode"])] = row["label"]
        labels.update({code(skin["hexcode"]): skin["label"] for skin in row.get("skins", ())})
    return labels


def english_name(text: EmojiText, hexcode: str, fallback: str | None = None) -> str:
    key = code(hexcode)
    om = text.openmoji.get(key)
    return text.cldr.get(key) or (om["annotation"] if om else None) or (fallback or key).lower()


def translations(text: EmojiText, hexcode: str) -> tuple[tuple[str, str], ...]:
    key = code(hexcode)
    return tuple((lang, table[key]) for lang, table in text.names.items() if lang not in ENGLISH and key in table)


def keywords(text: EmojiText, hexcode: str) -> tuple[str, ...]:
    row = text.openmoji.get(code(hexcode)) or text.openmoji.get(base_code(hexcode)) or {}
    tags = [t.strip() for field in ("tags", "openmoji_tags") for t in str(row.get(field) or "").split(",")]
    return tuple(dict.fromkeys(t for t in tags if t))


def datasource_items(source: str, text: EmojiText) -> list[Item]:
    """One item per image of emoji-datasource-STYLE (every skin variation), in emoji.json order."""
    style = STYLES[source]
    root = require(by_name(style.package))
    images = style.package.removeprefix("emoji-datasource-")
    items = []
    for row in json.loads((root / "emoji.json").read_text(encoding="utf-8")):
        base_name = english_name(text, row["unified"], row["name"])
        for variant in [row, *(row.get("skin_variations") or {}).values()]:
            if variant.get(f"has_img_{images}"):
                relative = f"img/{images}/64/{variant['image']}"
                labels = {"group": row["category"], "subgroup": row["subcategory"]}
                items.append(_item(style, text, root, relative, variant["unified"], base_name, labels))
    return items


def openmoji_items(text: EmojiText) -> list[Item]:
    """One item per OpenMoji colour SVG listed in openmoji.json (rendered later, at the pool's image size)."""
    style = STYLES["openmoji"]
    root = require(by_name(style.package))
    items = []
    for row in text.openmoji.values():
        base = text.openmoji.get(code(row["skintone_base_hexcode"] or row["hexcode"]), row)
        labels = {"group": GROUPS.get(row["group"]), "subgroup": row["subgroups"]}
        author = f"{style.attribution}: {row['openmoji_author']}" if row.get("openmoji_author") else style.attribution
        items.append(_item(EmojiStyle(style.source, style.package, style.license, author), text, root,
                           f"color/svg/{row['hexcode']}.svg", row["hexcode"], base["annotation"], labels))
    return items


def _item(style: EmojiStyle, text: EmojiText, root: Path, relative: str, hexcode: str, base_fallback: str,
          labels: dict) -> Item:
    base_name = english_name(text, base_code(hexcode), base_fallback)
    tone = tone_of(hexcode)
    name = text.cldr.get(code(hexcode)) or (f"{base_name}: {tone}" if tone else base_name)
    subgroup = labels["subgroup"].replace("-", " ") if labels.get("subgroup") else None
    group = labels["group"].lower() if labels.get("group") else None
    return Item(key=key_of(style.source, relative), source=style.source, path=inside(root, relative), caption=name,
                license=style.license, attribution=f"{style.attribution} (npm {by_name(style.package).spec})", relative=relative,
                concept=normalize_name(base_name), name=name,
                labels={"group": group, "subgroup": subgroup, "skin_tone": tone, "keywords": keywords(text, hexcode)},
                translations=translations(text, hexcode))
