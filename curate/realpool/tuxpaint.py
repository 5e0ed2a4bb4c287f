"""Tux Paint's stamps (Debian tuxpaint-stamps-default): clean English sentences with their translations.

Each stamp is `NAME.png` (or `NAME.svg`, rendered at the pool's image size) beside `NAME.txt`, whose first
line is the English description ("A frog.") and whose other lines are `LANG.utf8=translation`. A
description without an image keeps its row (status `missing_image`).
"""

from __future__ import annotations

from pathlib import Path

from tierclip.curate.realpool.items import Item, key_of
from tierclip.curate.realpool.packages import by_name, require

LICENSE, ATTRIBUTION = "GPL-2.0", "Tux Paint stamps by Bill Kendrick and contributors (Debian tuxpaint-stamps-default)"


def tuxpaint_items() -> list[Item]:
    root = require(by_name("tuxpaint-stamps-default"))
    return [_item(root, text) for text in sorted(root.rglob("*.txt")) if text.is_file()]


def read_description(path: Path) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """(English sentence, ((language, translation), ...)); English variants (en_GB, ...) are left out."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    english = lines[0].strip() if lines and lines[0].strip() else None
    translations = []
    for line in lines[1:]:
        lang, sep, text = line.partition("=")
        lang = lang.removesuffix(".utf8").strip()
        if sep and text.strip() and not lang.startswith("en"):
            translations.append((lang, text.strip()))
    return english, tuple(translations)


def _item(root: Path, text: Path) -> Item:
    image = next((p for p in (text.with_suffix(".png"), text.with_suffix(".svg")) if p.is_file()), None)
    english, translations = read_description(text)
    relative = (image or text).relative_to(root).as_posix()
    return Item(key=key_of("tuxpaint", relative), source="tuxpaint", path=image, caption=english, license=LICENSE,
                attribution=ATTRIBUTION, relative=relative, labels={"category": relative.split("/", 1)[0]},
                translations=translations)
