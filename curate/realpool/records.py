"""Pool rows from items: the shared ingest writer's `Record`s, with provenance and ground truth as meta columns.

Meta columns after the pool's own (`META_SCHEMA`): `source`, `license`, `attribution`, `concept`, `group`,
`subgroup`, `skin_tone`, `original_caption` (the package's caption of a row whose caption was rotated away),
and the ground truth: `gt_lang` (the caption's language), `gt_dup_of_key` (the key of the picture a
duplicate repeats) and the flags `gt_misaligned`, `gt_non_english`, `gt_stock_title`, `gt_exact_dup`,
`gt_entity` and `gt_clean` (none of the others).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
from tierclip.curate.images import ImageDecodeError
from tierclip.curate.ingest.writer import Record
from tierclip.curate.realpool.captions import Caption
from tierclip.curate.realpool.items import Item
from tierclip.curate.realpool.render import load_image

GT_FLAGS = ("gt_misaligned", "gt_non_english", "gt_stock_title", "gt_exact_dup", "gt_entity")
META_SCHEMA = {
    "source": pl.Utf8, "license": pl.Utf8, "attribution": pl.Utf8, "concept": pl.Utf8,
    "group": pl.Utf8, "subgroup": pl.Utf8, "skin_tone": pl.Utf8, "original_caption": pl.Utf8,
    "gt_lang": pl.Utf8, "gt_dup_of_key": pl.Utf8, **dict.fromkeys(GT_FLAGS, pl.Boolean), "gt_clean": pl.Boolean,
}


@dataclass(frozen=True)
class Row:
    item: Item
    caption: Caption
    donor: Caption | None = None   # the rotated-in caption of a misaligned row


def records(rows: list[Row], image_size: int) -> Iterator[Record]:
    """One Record per row, image bytes read (or an SVG rendered) only when the writer asks for it."""
    for row in rows:
        yield record(row, image_size)


def record(row: Row, image_size: int) -> Record:
    item, shown = row.item, row.donor or row.caption
    base = dict(key=item.key, caption=shown.text, url=f"{item.source}:{item.relative}", extra=_extra(item),
                columns=columns(row))
    if item.path is None or not item.path.is_file():
        return Record(**base, status="missing_image", error=f"{item.source}: {item.relative}: no image file in the package")
    try:
        data, ext = load_image(item.path, image_size)
    except ImageDecodeError as exc:
        return Record(**base, status=exc.status, error=str(exc))
    return Record(**base, image=data, image_ext=ext)


def columns(row: Row) -> dict:
    item, shown = row.item, row.donor or row.caption
    flags = {"gt_misaligned": row.donor is not None, "gt_non_english": shown.lang not in (None, "en"),
             "gt_stock_title": bool(item.flags.get("gt_stock_title")), "gt_exact_dup": bool(item.flags.get("gt_exact_dup")),
             "gt_entity": bool(item.flags.get("gt_entity"))}
    return {"source": item.source, "license": item.license, "attribution": item.attribution, "concept": item.concept,
            **{label: item.labels.get(label) for label in ("group", "subgroup", "skin_tone")},
            "original_caption": row.caption.text if row.donor is not None else None, "gt_lang": shown.lang,
            "gt_dup_of_key": item.dup_of, **flags, "gt_clean": not any(flags.values())}


def _extra(item: Item) -> dict:
    """The sample's json: provenance, and what the package says that meta does not hold."""
    extra = {"source": item.source, "license": item.license, "attribution": item.attribution, "path": item.relative}
    return {**extra, **{k: v for k, v in item.labels.items() if k in ("description", "category", "keywords") and v}}
