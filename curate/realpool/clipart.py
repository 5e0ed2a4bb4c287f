"""Open Clip Art Library 0.18 (Debian openclipart-png), kept with its own noise.

Each PNG's text is what its author typed into Inkscape, stored in the PNG's tEXt chunks: `Title`
(the caption), `Author` (the attribution), `Description` (kept in the sample's json). That text is
real noise and stays as it is; the defects the package itself shows are flagged:
- `gt_stock_title`: a title shared by at least `STOCK_TITLE_MIN` different images ("gramastar",
  "Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)", an author's name, ...);
- `gt_exact_dup`: a symlink to another file of the package (the same picture filed under a second
  category) or the same bytes as an earlier file; `dup_of` names the first one;
- `gt_entity`: an HTML entity left in the title (`&quot;`, `&amp;`).
Foreign-language titles are not flagged (nothing in the package says which they are). Huge images
(up to 20,990 x 29,700) are the pool's `--max-pixels` / `--image-size` business, as in every ingest.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

from tierclip.curate.realpool.items import Item, key_of
from tierclip.curate.realpool.packages import by_name, require

STOCK_TITLE_MIN = 3
ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")
LICENSE, ATTRIBUTION = "public-domain", "Open Clip Art Library 0.18 (Debian openclipart-png)"


def clipart_items() -> list[Item]:
    root = require(by_name("openclipart-png")).resolve()
    files = sorted(p for p in root.rglob("*.png") if p.is_file())
    texts = {p: _png_text(p) for p in files if not p.is_symlink()}
    firsts = _first_of_content(root, [p for p in files if not p.is_symlink()])
    stock = _stock_titles(texts, firsts)
    return [_item(root, path, texts, firsts, stock) for path in files]


def _png_text(path: Path) -> dict:
    """The tEXt chunks of a PNG (header only: no pixels decoded, so a huge image costs nothing here)."""
    from tierclip.curate.images import ImageDecodeError, open_checked

    try:
        return dict(open_checked(path.read_bytes(), max_pixels=0).info)
    except ImageDecodeError:
        return {}


def _first_of_content(root: Path, files: list[Path]) -> dict[Path, Path]:
    """Each file -> the first file (in path order) with the same bytes."""
    first: dict[str, Path] = {}
    return {path: first.setdefault(hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest(), path) for path in files}


def _stock_titles(texts: dict[Path, dict], firsts: dict[Path, Path]) -> set[str]:
    counts = Counter(texts[p].get("Title") for p, first in firsts.items() if p == first)
    return {title for title, n in counts.items() if title and n >= STOCK_TITLE_MIN}


def _original(root: Path, path: Path, firsts: dict[Path, Path]) -> Path | None:
    """The file whose picture `path` shows first: a symlink's target, else the first file with the same bytes;
    None for a symlink leading outside the package."""
    if not path.is_symlink():
        return firsts[path]
    target = path.resolve()
    return firsts.get(target, target) if target.is_relative_to(root) and target.is_file() else None


def _item(root: Path, path: Path, texts: dict, firsts: dict, stock: set[str]) -> Item:
    original = _original(root, path, firsts)
    info = texts.get(original, {})
    title = info.get("Title")
    relative = path.relative_to(root).as_posix()
    dup_of = key_of("openclipart", original.relative_to(root).as_posix()) if original not in (None, path) else None
    flags = {"gt_stock_title": title in stock, "gt_exact_dup": dup_of is not None,
             "gt_entity": bool(title and ENTITY.search(title))}
    return Item(key=key_of("openclipart", relative), source="openclipart", path=original and path, caption=title,
                license=LICENSE, relative=relative,
                attribution=f"{info['Author']} ({ATTRIBUTION})" if info.get("Author") else ATTRIBUTION,
                labels={"description": info.get("Description")}, flags=flags, dup_of=dup_of)
