"""`basic`: caption length, words, non-alphabetic share, image size, aspect ratio, decodable (DataComp's basic-filter inputs).

Width and height come from meta where ingest recorded them; an image is
decoded only where meta lacks its size or its status is not `success`.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
from tierclip.curate.pool import OK
from tierclip.curate.stages.base import IMAGES, NoOptions, ShardContext, Stage

PRODUCES = {
    "caption_chars": pl.Int32,
    "caption_words": pl.Int32,
    "caption_nonalpha_frac": pl.Float32,
    "image_width": pl.Int32,
    "image_height": pl.Int32,
    "aspect_ratio": pl.Float32,
    "decodable": pl.Boolean,
}


def caption_columns(caption: pl.Expr) -> list[pl.Expr]:
    """Characters and words (0 for a null caption) and the share of non-space characters that are not letters (null if none)."""
    non_space = caption.str.count_matches(r"\S")
    non_alpha = caption.str.count_matches(r"[^\p{L}\s]")
    return [
        caption.str.len_chars().fill_null(0).cast(pl.Int32).alias("caption_chars"),
        caption.str.count_matches(r"\S+").fill_null(0).cast(pl.Int32).alias("caption_words"),
        pl.when(non_space > 0).then(non_alpha / non_space).cast(pl.Float32).alias("caption_nonalpha_frac"),
    ]


def decode_size(data: bytes | None) -> tuple[int | None, int | None, bool]:
    """(width, height, decodable) by fully decoding the image (curate.images); a broken image is (None, None, False)."""
    from tierclip.curate.images import ImageDecodeError, load_upright

    try:
        image = load_upright(data)
        return image.width, image.height, True
    except ImageDecodeError:
        return None, None, False


def image_columns(meta: pl.DataFrame, images: Iterator | None) -> pl.DataFrame:
    widths, heights = meta["width"].to_list(), meta["height"].to_list()
    if images is None:  # metadata-only pool: sizes from meta, decodability unknown
        return pl.DataFrame({"image_width": widths, "image_height": heights, "decodable": [None] * meta.height},
                            schema={"image_width": pl.Int32, "image_height": pl.Int32, "decodable": pl.Boolean})
    decodable = []
    for row, (data, status) in enumerate(zip(images, meta["status"].to_list(), strict=True)):
        if data is not None and status == OK and widths[row] is not None and heights[row] is not None:
            decodable.append(True)  # ingest decoded it already
            continue
        width, height, ok = decode_size(data)
        widths[row] = widths[row] if widths[row] is not None else width
        heights[row] = heights[row] if heights[row] is not None else height
        decodable.append(ok)
    return pl.DataFrame({"image_width": widths, "image_height": heights, "decodable": decodable},
                        schema={"image_width": pl.Int32, "image_height": pl.Int32, "decodable": pl.Boolean})


def compute(meta: pl.DataFrame, images: Iterator | None, cfg: NoOptions, ctx: ShardContext) -> pl.DataFrame:
    sizes = image_columns(meta, images)
    longer = pl.max_horizontal("image_width", "image_height")
    shorter = pl.min_horizontal("image_width", "image_height")
    return (
        pl.concat([meta.select("uid", "caption"), sizes], how="horizontal")
        .with_columns(*caption_columns(pl.col("caption")),
                      pl.when(shorter > 0).then(longer / shorter).cast(pl.Float32).alias("aspect_ratio"))
        .select("uid", *PRODUCES)
    )


STAGE = Stage(
    name="basic", produces=PRODUCES, compute=compute, config=NoOptions,
    needs=("uid", "caption", "width", "height", "status"), uses=(IMAGES,),
    doc="caption chars/words/non-alphabetic share, image width/height/aspect ratio (max/min), decodable",
)
